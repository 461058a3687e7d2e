//! The text the lake and its agents exchange as chat turns.
//!
//! - The first user message ([`task_message`]) states the rules, the map (rows of
//!   `S . H G`) and the initial observation.
//! - Each assistant message is one action: a short phrase such as `go down`
//!   ([`action_phrase`]) that the environment parses with [`parse_action`].
//! - Each following user message is the environment's answer ([`observation_message`]).
//!
//! Observations are local and short (tens of characters) so that a tiny character-level
//! model can act well and an episode stays a few hundred tokens:
//! `moved down | at 1,0 | up S down . left # right H | goal down 3 right 4 | 12 left`:
//! what happened, the position `row,column` (0-based, rows downwards), the four neighbours'
//! tiles (`#` = off the map), the goal's relative direction, and the moves left.

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

/// The first user message: rules, map, and where the agent stands.
///
/// ```text
/// Reach G from S on the ice. H is a hole. A move slips sideways with prob 0.2. 14 moves.
/// S..H.
/// ...
/// at 0,0 | up # down . left # right . | goal down 4 right 4 | 14 left
/// ```
pub fn task_message(lake: &Lake) -> String {
    let c = lake.config();
    let mut out = format!(
        "Reach G from S on the ice. H is a hole. A move slips sideways with prob {}. {} moves.\n",
        c.slip, c.max_steps
    );
    for row in lake.rows() {
        out.push_str(&row);
        out.push('\n');
    }
    out.push_str(&position_line(lake, lake.initial()));
    out
}

/// The environment's answer to a step: what happened, then where the agent stands (or how
/// the episode ended).
pub fn observation_message(lake: &Lake, step: &Step) -> String {
    let event = match (step.action, step.moved) {
        (Action::Move(_), Some(m)) => {
            let verb = if step.slipped() { "slipped" } else { "moved" };
            let blocked = if step.state.pos == step.from.pos {
                " (blocked)"
            } else {
                ""
            };
            format!("{verb} {}{blocked}", move_word(m))
        }
        _ if step.from == step.state => "episode over".to_string(),
        _ => "invalid action, no move".to_string(),
    };
    let (r, c) = lake.coords(step.state.pos);
    match step.status {
        Status::Running => format!("{event} | {}", position_line(lake, step.state)),
        Status::Goal => format!("{event} | reached the goal at {r},{c}"),
        Status::Hole => format!("{event} | fell in a hole at {r},{c}"),
        Status::OutOfSteps => format!("{event} | at {r},{c} | out of moves"),
    }
}

/// `at r,c | up X down X left X right X | goal down a right b | k left`.
fn position_line(lake: &Lake, s: State) -> String {
    let (r, c) = lake.coords(s.pos);
    let mut out = format!("at {r},{c} |");
    for m in Move::ALL {
        let tile = lake
            .neighbour(s.pos, m)
            .map_or('#', |q| lake.tile(q).symbol());
        out.push_str(&format!(" {} {tile}", move_word(m)));
    }
    let (gr, gc) = lake.coords(lake.goal());
    out.push_str(" | goal");
    if gr != r {
        let word = if gr > r { "down" } else { "up" };
        out.push_str(&format!(" {word} {}", gr.abs_diff(r)));
    }
    if gc != c {
        let word = if gc > c { "right" } else { "left" };
        out.push_str(&format!(" {word} {}", gc.abs_diff(c)));
    }
    let left = lake.config().max_steps.saturating_sub(s.t);
    out.push_str(&format!(" | {left} left"));
    out
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
        assert_eq!(
            task,
            "Reach G from S on the ice. H is a hole. A move slips sideways with prob 0. 6 moves.\n\
             S.H\n...\nH.G\n\
             at 0,0 | up # down . left # right . | goal down 2 right 2 | 6 left"
        );
        let mut rng = SplitMix64::new(0);
        let s = lake.initial();
        let step = lake.step(s, Action::Move(Move::Right), &mut rng);
        assert_eq!(
            step.observation,
            "moved right | at 0,1 | up # down . left S right H | goal down 2 right 1 | 5 left"
        );
        let step = lake.step(step.state, Action::Move(Move::Right), &mut rng);
        assert_eq!(step.observation, "moved right | fell in a hole at 0,2");
        let step = lake.step(s, Action::Move(Move::Up), &mut rng);
        assert_eq!(
            step.observation,
            "moved up (blocked) | at 0,0 | up # down . left # right . | goal down 2 right 2 | 5 left"
        );
        let step = lake.step(s, Action::Invalid, &mut rng);
        assert!(step
            .observation
            .starts_with("invalid action, no move | at 0,0"));
        let near = State { pos: 5, t: 5 };
        let step = lake.step(near, Action::Move(Move::Down), &mut rng);
        assert_eq!(step.observation, "moved down | reached the goal at 2,2");
        let step = lake.step(State { pos: 4, t: 5 }, Action::Move(Move::Up), &mut rng);
        assert_eq!(step.observation, "moved up | at 0,1 | out of moves");
    }
}
