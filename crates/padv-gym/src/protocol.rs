//! The text the lake and its agents exchange as chat turns.
//!
//! - The first user message ([`task_message`]) states the rules, the map (rows of
//!   `S . H G`) and the initial observation.
//! - Each assistant message is one action: a short phrase such as `go down`
//!   ([`action_phrase`]) that the environment parses with [`parse_action`].
//! - Each following user message is the environment's answer ([`observation_message`]).
//!
//! Observations are local and terse (about 20 characters) so that a tiny character-level
//! model can act well and an episode stays around 300 tokens, which is what makes training
//! the pair on two CPU cores a matter of minutes: `slip left 1,0 12 hole r safe d` reads
//! "the ice turned the move to the left; now at row 1, column 0; 12 moves left; the tile to
//! the right is a hole; going down leads towards the goal without falling in". The full map
//! is in the first message.

use crate::lake::{Action, Lake, Move, State, Status, Step};

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

/// Parses an action message: the words (maximal runs of ASCII letters, case-insensitive)
/// must name exactly one distinct direction among `up`, `down`, `left`, `right`; anything
/// else (no direction, two different directions, empty text) is [`Action::Invalid`].
/// Other words are allowed, so `go down`, `Down!` and `down, down` all mean down.
pub fn parse_action(text: &str) -> Action {
    let mut found: Option<Move> = None;
    for word in text
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
    {
        let m = match word.to_ascii_lowercase().as_str() {
            "up" => Move::Up,
            "down" => Move::Down,
            "left" => Move::Left,
            "right" => Move::Right,
            _ => continue,
        };
        match found {
            None => found = Some(m),
            Some(prev) if prev == m => {}
            Some(_) => return Action::Invalid,
        }
    }
    found.map_or(Action::Invalid, Action::Move)
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
    fn parsing_needs_exactly_one_direction() {
        for m in Move::ALL {
            assert_eq!(parse_action(action_phrase(m)), Action::Move(m));
            assert_eq!(parse_action(move_word(m)), Action::Move(m));
        }
        assert_eq!(parse_action("Down!"), Action::Move(Move::Down));
        assert_eq!(parse_action("down, down"), Action::Move(Move::Down));
        assert_eq!(parse_action("  go   LEFT\n"), Action::Move(Move::Left));
        assert_eq!(parse_action(""), Action::Invalid);
        assert_eq!(parse_action("go"), Action::Invalid);
        assert_eq!(parse_action("up or down"), Action::Invalid);
        // Words, not substrings: "upward" and "downright" name no direction.
        assert_eq!(parse_action("go upward"), Action::Invalid);
        assert_eq!(parse_action("downright"), Action::Invalid);
        assert_eq!(parse_action("go2left"), Action::Move(Move::Left));
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
    }
}
