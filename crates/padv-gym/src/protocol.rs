//! The text the lake and its agents exchange as chat turns.
//!
//! - The first user message ([`task_message`]) states the rules, the map (rows of
//!   `S . H G`) and the initial observation.
//! - Each assistant message is one action, written in one of two [`ActionStyle`]s: `terse`
//!   (exactly `go down`) or `verbose` (a free-text remark line, a newline, then `go down`),
//!   parsed strictly by [`parse_action`] like a tool call with a fixed schema.
//! - Each following user message is the environment's answer ([`observation_message`]).
//!
//! Observations are local and terse (about 20 characters) so that a tiny character-level
//! model can act well and an episode stays around 300 tokens, which is what makes training
//! the pair on two CPU cores a matter of minutes: `slip left 1,0 12 hole r safe d` reads
//! "the ice turned the move to the left; now at row 1, column 0; 12 moves left; the tile to
//! the right is a hole; going down leads towards the goal without falling in". The full map
//! is in the first message.

use serde::{Deserialize, Serialize};

use crate::lake::{Action, Lake, Move, State, Status, Step};

/// How the agent writes an action message.
///
/// Why a strict grammar: the environment's action set must be a function of the text that
/// leaves no probability mass unaccounted for, so that the reference's distribution over
/// the environment's actions (`go X` for each move, everything else invalid) is exactly
/// computable from the model — which the soft ground truth and the oracle rest on. Real
/// agents face the same contract with tool-call schemas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionStyle {
    /// The message is exactly `go up|down|left|right`; every token but the direction is
    /// deterministic, so the policy's log-prob carries no nuisance.
    #[default]
    Terse,
    /// A remark line (any text without a newline: what the agent sees, in varying words and
    /// lengths, independent of the move it then makes), a newline, then exactly `go X`. The
    /// remark's tokens say nothing about the action's quality: the nuisance real agents'
    /// free text carries.
    Verbose,
}

impl ActionStyle {
    /// Both styles, terse first.
    pub const ALL: [ActionStyle; 2] = [ActionStyle::Terse, ActionStyle::Verbose];

    /// The style's name (`terse`, `verbose`).
    pub fn name(self) -> &'static str {
        match self {
            ActionStyle::Terse => "terse",
            ActionStyle::Verbose => "verbose",
        }
    }

    /// The longest action (in tokens, end-of-turn excluded) a sampler lets a model write
    /// before forcing the end of the turn: room for the longest expert text with a wide
    /// margin.
    pub fn max_action_tokens(self) -> usize {
        match self {
            ActionStyle::Terse => 16,
            ActionStyle::Verbose => 112,
        }
    }

    /// Parses a style name.
    pub fn parse(name: &str) -> Option<ActionStyle> {
        ActionStyle::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl std::fmt::Display for ActionStyle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The canonical phrase for a move, as the expert writes it.
pub fn action_phrase(m: Move) -> &'static str {
    match m {
        Move::Up => "go up",
        Move::Down => "go down",
        Move::Left => "go left",
        Move::Right => "go right",
    }
}

/// The direction word of a move.
pub fn move_word(m: Move) -> &'static str {
    match m {
        Move::Up => "up",
        Move::Down => "down",
        Move::Left => "left",
        Move::Right => "right",
    }
}

/// The move a move line names: exactly `go up`, `go down`, `go left` or `go right`.
fn parse_move_line(line: &str) -> Option<Move> {
    Move::ALL.into_iter().find(|m| action_phrase(*m) == line)
}

/// Parses an action message of `style`, strictly:
/// - `terse`: the whole message is a move line, exactly `go up|down|left|right`;
/// - `verbose`: a remark line (any text without a newline, possibly empty), one newline,
///   then exactly such a move line.
///
/// Anything else (`Down!`, `go  down`, a missing remark line, a second newline) is
/// [`Action::Invalid`]: the turn is wasted, like a malformed tool call.
pub fn parse_action(text: &str, style: ActionStyle) -> Action {
    let line = match style {
        ActionStyle::Terse => Some(text),
        ActionStyle::Verbose => text
            .split_once('\n')
            .map(|(_, rest)| rest)
            .filter(|rest| !rest.contains('\n')),
    };
    line.and_then(parse_move_line)
        .map_or(Action::Invalid, Action::Move)
}

/// The first user message: the rules in one line, the map, and where the agent stands.
///
/// ```text
/// slip 0.2, 14 moves
/// S..H.
/// .....
/// 0,0 14 hole - safe dr
/// ```
pub fn task_message(lake: &Lake) -> String {
    let c = lake.config();
    let mut out = format!("slip {}, {} moves\n", c.slip, c.max_steps);
    for row in lake.rows() {
        out.push_str(&row);
        out.push('\n');
    }
    out.push_str(&position_line(lake, lake.initial()));
    out
}

/// The environment's answer to a step: what happened, then where the agent stands (or how
/// the episode ended).
///
/// What happened is the direction the agent actually went, prefixed with `slip` when the
/// ice turned it and `bump` when it hit the shore and stayed put; `invalid` for an
/// unparsable action; `over` for acting after the end. Examples: `down 1,0 12 hole r safe d`,
/// `slip bump left 0,0 11 hole - safe dr`, `down hole 2,1`, `right goal`,
/// `up 0,1 no moves left`.
pub fn observation_message(lake: &Lake, step: &Step) -> String {
    let event = match (step.action, step.moved) {
        (Action::Move(_), Some(m)) => {
            let slip = if step.slipped() { "slip " } else { "" };
            let bump = if step.state.pos == step.from.pos {
                "bump "
            } else {
                ""
            };
            format!("{slip}{bump}{}", move_word(m))
        }
        _ if step.from == step.state => "over".to_string(),
        _ => "invalid".to_string(),
    };
    let (r, c) = lake.coords(step.state.pos);
    match step.status {
        Status::Running => format!("{event} {}", position_line(lake, step.state)),
        Status::Goal => format!("{event} goal"),
        Status::Hole => format!("{event} hole {r},{c}"),
        Status::OutOfSteps => format!("{event} {r},{c} no moves left"),
    }
}

/// The state an observation of a running episode reports (`… r,c k hole H safe S`: row,
/// column and moves left), `None` for an observation that ends the episode or does not
/// parse. The inverse of [`observation_message`] on running states.
pub fn parse_position(lake: &Lake, observation: &str) -> Option<State> {
    let words: Vec<&str> = observation.split(' ').collect();
    words.windows(2).find_map(|w| {
        let (r, c) = w[0].split_once(',')?;
        let (r, c): (usize, usize) = (r.parse().ok()?, c.parse().ok()?);
        let left: usize = w[1].parse().ok()?;
        let n = lake.size();
        let max = lake.config().max_steps;
        (r < n && c < n && left <= max).then_some(State {
            pos: r * n + c,
            t: max - left,
        })
    })
}

/// `r,c k hole H safe S`: the position (0-based, rows downwards), the moves left, the
/// directions of the neighbouring holes as initials in the order `u d l r` (`dr` = down and
/// right; `-` for none), and the directions that lead towards the goal without stepping
/// into a hole, the same way.
///
/// Why spell it out: the agent is a character-level decoder of a few hundred thousand
/// parameters trained in minutes; it learns to copy a letter from the last observation into
/// its action (`go d…`), but it did not learn to read holes off a positional string such as
/// `S.#H` nor to take the difference of two direction lists (its SFT reference stepped into
/// an adjacent hole a third of the time either way). The hint comes last, so it sits at the
/// same short distance before every action's first letter. The map stays hard where the hint is
/// empty or wrong: when every direction towards the goal is a hole, and where the ice makes
/// the straight way riskier than a detour; and slips make every plan a gamble.
fn position_line(lake: &Lake, s: State) -> String {
    let (r, c) = lake.coords(s.pos);
    let (gr, gc) = lake.coords(lake.goal());
    let left = lake.config().max_steps.saturating_sub(s.t);
    let hole = |m: Move| {
        lake.neighbour(s.pos, m)
            .is_some_and(|q| lake.tile(q) == crate::lake::Tile::Hole)
    };
    let safe = |m: Move| {
        let towards = match m {
            Move::Up => gr < r,
            Move::Down => gr > r,
            Move::Left => gc < c,
            Move::Right => gc > c,
        };
        towards && !hole(m)
    };
    let initials = |keep: &dyn Fn(Move) -> bool| {
        let s: String = Move::ALL
            .into_iter()
            .filter(|&m| keep(m))
            .map(|m| move_word(m).chars().next().unwrap_or('?'))
            .collect();
        if s.is_empty() {
            "-".to_string()
        } else {
            s
        }
    };
    format!(
        "{r},{c} {left} hole {} safe {}",
        initials(&hole),
        initials(&safe)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use padv_core::eval::SplitMix64;

    #[test]
    fn parsing_is_strict_per_style() {
        use ActionStyle::{Terse, Verbose};
        for m in Move::ALL {
            assert_eq!(parse_action(action_phrase(m), Terse), Action::Move(m));
            let verbose = format!("{} here, {} moves\n{}", move_word(m), 3, action_phrase(m));
            assert_eq!(parse_action(&verbose, Verbose), Action::Move(m));
            // The remark may name other directions: only the move line counts.
            assert_eq!(
                parse_action(
                    &format!("up down left right\n{}", action_phrase(m)),
                    Verbose
                ),
                Action::Move(m)
            );
            assert_eq!(
                parse_action(&format!("\n{}", action_phrase(m)), Verbose),
                Action::Move(m)
            );
            // Each style's form is invalid in the other.
            assert_eq!(parse_action(action_phrase(m), Verbose), Action::Invalid);
            assert_eq!(parse_action(&verbose, Terse), Action::Invalid);
        }
        for bad in [
            "",
            "go",
            "down",
            "Down!",
            "go Down",
            "go  down",
            " go down",
            "go down ",
            "go down.",
            "go downn",
            "go up or down",
            "wait",
        ] {
            assert_eq!(parse_action(bad, Terse), Action::Invalid, "{bad:?}");
            assert_eq!(
                parse_action(&format!("ok\n{bad}"), Verbose),
                Action::Invalid,
                "{bad:?}"
            );
        }
        assert_eq!(parse_action("a\nb\ngo down", Verbose), Action::Invalid);
        assert_eq!(parse_action("ok\ngo down\n", Verbose), Action::Invalid);
        assert_eq!(ActionStyle::parse("verbose"), Some(Verbose));
        assert_eq!(ActionStyle::parse("loud"), None);
    }

    #[test]
    fn messages_describe_the_map_and_the_step() {
        let lake = Lake::from_rows(&["S.H", "...", "H.G"], 0.0, 6).unwrap();
        let task = task_message(&lake);
        assert_eq!(task, "slip 0, 6 moves\nS.H\n...\nH.G\n0,0 6 hole - safe dr");
        let mut rng = SplitMix64::new(0);
        let s = lake.initial();
        let step = lake.step(s, Action::Move(Move::Right), &mut rng);
        assert_eq!(step.observation, "right 0,1 5 hole r safe d");
        let step = lake.step(step.state, Action::Move(Move::Right), &mut rng);
        assert_eq!(step.observation, "right hole 0,2");
        let step = lake.step(s, Action::Move(Move::Up), &mut rng);
        assert_eq!(step.observation, "bump up 0,0 5 hole - safe dr");
        let step = lake.step(s, Action::Invalid, &mut rng);
        assert!(step.observation.starts_with("invalid 0,0 "));
        let near = State { pos: 5, t: 5 };
        let step = lake.step(near, Action::Move(Move::Down), &mut rng);
        assert_eq!(step.observation, "down goal");
        let step = lake.step(State { pos: 4, t: 5 }, Action::Move(Move::Up), &mut rng);
        assert_eq!(step.observation, "up 0,1 no moves left");
        assert_eq!(parse_position(&lake, &step.observation), None);
        assert_eq!(parse_position(&lake, "down hole 2,1"), None);
        assert_eq!(parse_position(&lake, "right goal"), None);
        for s in [State { pos: 5, t: 2 }, State { pos: 0, t: 0 }] {
            for a in Action::ALL {
                let step = lake.step(s, a, &mut rng);
                if !step.done() {
                    assert_eq!(parse_position(&lake, &step.observation), Some(step.state));
                }
            }
        }
        assert_eq!(
            parse_position(&lake, task.lines().last().unwrap()),
            Some(lake.initial())
        );
    }
}
