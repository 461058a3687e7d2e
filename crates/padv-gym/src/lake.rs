//! The slippery lake: an n×n grid with a start, a goal, holes and frozen tiles, whose
//! dynamics are known exactly so that the optimal success probability of every state can be
//! computed ([`crate::solver`]) and an agent's every step judged against it.
//!
//! Dynamics of one action from a non-terminal state `(pos, t)`:
//! - [`Action::Move`]`(m)`: with probability `1 − slip` the agent moves in direction `m`, and
//!   with probability `slip / 2` each in one of the two perpendicular directions. A move off
//!   the map leaves the agent where it is (it bumps into the shore).
//! - [`Action::Invalid`] (the agent's text named no single direction): the agent stays put.
//!   The step still counts, so an unparsable action costs time but is never fatal by itself;
//!   that is the realistic failure mode of a text agent (it wastes its budget).
//! - `t` grows by one. Landing on the goal ends the episode with reward 1, landing in a hole
//!   ends it with reward 0 (an irreversible mistake), and otherwise the episode ends with
//!   reward 0 once `t == max_steps`.
//!
//! Maps are solvable by construction: [`Lake::generate`] first lays a random
//! shortest-length path of frozen tiles from start to goal and only then places holes on
//! tiles off that path, so an agent that never slips reaches the goal in `distance` moves
//! (and `max_steps` must allow that; [`LakeConfig::validate`] checks it).

use serde::{Deserialize, Serialize};

use padv_core::eval::SplitMix64;

use crate::error::GymError;
use crate::protocol;

/// Parameters of a lake family; a seed picks one map of the family.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LakeConfig {
    /// Side length of the square map (2..=26).
    pub size: usize,
    /// Probability that a move slips to one of the two perpendicular directions (`[0, 1)`).
    pub slip: f64,
    /// Fraction of the tiles off the guaranteed path that are holes (`[0, 1)`).
    pub hole_fraction: f64,
    /// Actions allowed before the episode ends as a failure.
    pub max_steps: usize,
}

impl LakeConfig {
    /// The gym's default family: 5×5, slip 0.2, 20 % holes, `2·size + 4` steps.
    pub fn default_for_size(size: usize) -> LakeConfig {
        LakeConfig {
            size,
            slip: 0.2,
            hole_fraction: 0.2,
            max_steps: 2 * size + 4,
        }
    }

    /// Checks every field's range; the start–goal distance is at most `2·(size − 1)`, so
    /// `max_steps` must be at least that for every map to be solvable.
    pub fn validate(&self) -> Result<(), GymError> {
        if !(2..=26).contains(&self.size) {
            return Err(GymError::Config(format!(
                "size must be in 2..=26, got {}",
                self.size
            )));
        }
        if !(0.0..1.0).contains(&self.slip) {
            return Err(GymError::Config(format!(
                "slip must be in [0, 1), got {}",
                self.slip
            )));
        }
        if !(0.0..1.0).contains(&self.hole_fraction) {
            return Err(GymError::Config(format!(
                "hole_fraction must be in [0, 1), got {}",
                self.hole_fraction
            )));
        }
        if self.max_steps < 2 * (self.size - 1) {
            return Err(GymError::Config(format!(
                "max_steps {} is below the longest start-goal distance {} of a {}x{} map",
                self.max_steps,
                2 * (self.size - 1),
                self.size,
                self.size
            )));
        }
        Ok(())
    }
}

impl Default for LakeConfig {
    fn default() -> Self {
        LakeConfig::default_for_size(5)
    }
}

/// A compass move on the map (rows grow downwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Move {
    /// Row − 1.
    Up,
    /// Row + 1.
    Down,
    /// Column − 1.
    Left,
    /// Column + 1.
    Right,
}

impl Move {
    /// All moves, in the order used by every table in the gym.
    pub const ALL: [Move; 4] = [Move::Up, Move::Down, Move::Left, Move::Right];

    /// The two directions a slip can take instead of `self`.
    pub fn perpendicular(self) -> [Move; 2] {
        match self {
            Move::Up | Move::Down => [Move::Left, Move::Right],
            Move::Left | Move::Right => [Move::Up, Move::Down],
        }
    }

    /// `(row, column)` offset.
    pub fn delta(self) -> (isize, isize) {
        match self {
            Move::Up => (-1, 0),
            Move::Down => (1, 0),
            Move::Left => (0, -1),
            Move::Right => (0, 1),
        }
    }

    /// Index in [`Move::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }
}

/// What the environment made of an action message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// A parsed move.
    Move(Move),
    /// Text naming no single direction; the agent stays put and loses the step.
    Invalid,
}

impl Action {
    /// Every action, moves first, in the order of [`Action::index`].
    pub const ALL: [Action; 5] = [
        Action::Move(Move::Up),
        Action::Move(Move::Down),
        Action::Move(Move::Left),
        Action::Move(Move::Right),
        Action::Invalid,
    ];

    /// Index in [`Action::ALL`] (moves 0..4, invalid 4).
    pub fn index(self) -> usize {
        match self {
            Action::Move(m) => m.index(),
            Action::Invalid => 4,
        }
    }
}

/// What a tile is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tile {
    /// Where every episode starts (frozen, safe).
    Start,
    /// Safe ice.
    Frozen,
    /// Falling in ends the episode as a failure.
    Hole,
    /// Reaching it ends the episode as a success.
    Goal,
}

impl Tile {
    /// The map character: `S`, `.`, `H`, `G`.
    pub fn symbol(self) -> char {
        match self {
            Tile::Start => 'S',
            Tile::Frozen => '.',
            Tile::Hole => 'H',
            Tile::Goal => 'G',
        }
    }
}

/// A position and the number of actions taken so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct State {
    /// Tile index `row · size + column`.
    pub pos: usize,
    /// Actions taken so far.
    pub t: usize,
}

/// How an episode stands after a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// The episode goes on.
    Running,
    /// Reached the goal (reward 1).
    Goal,
    /// Fell in a hole (reward 0).
    Hole,
    /// Ran out of steps (reward 0).
    OutOfSteps,
}

impl Status {
    /// Whether the episode has ended.
    pub fn is_done(self) -> bool {
        self != Status::Running
    }
}

/// The result of one sampled transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The state before the action.
    pub from: State,
    /// The action as the environment understood it.
    pub action: Action,
    /// The direction actually taken (`None` for an invalid action).
    pub moved: Option<Move>,
    /// The state after the action.
    pub state: State,
    /// 1 on reaching the goal, else 0.
    pub reward: f64,
    /// How the episode stands now.
    pub status: Status,
    /// The environment's answer ([`protocol::observation_message`]).
    pub observation: String,
}

impl Step {
    /// Whether the episode ended with this step.
    pub fn done(&self) -> bool {
        self.status.is_done()
    }

    /// Whether the move went sideways.
    pub fn slipped(&self) -> bool {
        matches!((self.action, self.moved), (Action::Move(a), Some(m)) if a != m)
    }
}

/// A text environment with exact, finite dynamics: the gym's agents only see
/// [`Environment::task`] and observations, and act by text.
pub trait Environment {
    /// The first user message: the task and the initial observation.
    fn task(&self) -> String;
    /// The state every episode starts in.
    fn initial(&self) -> State;
    /// How a state stands (terminal or not).
    fn status(&self, s: State) -> Status;
    /// Parses the agent's text (written in `style`) and samples the transition.
    fn step_text(
        &self,
        s: State,
        text: &str,
        style: protocol::ActionStyle,
        rng: &mut SplitMix64,
    ) -> Step;
}

/// One map of a [`LakeConfig`] family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lake {
    config: LakeConfig,
    seed: u64,
    tiles: Vec<Tile>,
    start: usize,
    goal: usize,
}

impl Lake {
    /// Generates the map of `config` for `seed` (deterministic).
    ///
    /// Start and goal are uniform over pairs at Manhattan distance at least `size − 1` (so
    /// every map needs real navigation). A uniformly random monotone path (a random
    /// interleaving of the needed vertical and horizontal moves) joins them and stays
    /// frozen; `round(hole_fraction · free tiles)` holes are then placed uniformly among
    /// the remaining tiles.
    pub fn generate(config: &LakeConfig, seed: u64) -> Result<Lake, GymError> {
        config.validate()?;
        let n = config.size;
        let mut rng = SplitMix64::new(seed ^ 0x6C61_6B65_5F6D_6170);
        let cells = n * n;
        let (start, goal) = loop {
            let a = rng.below(cells);
            let b = rng.below(cells);
            if manhattan(n, a, b) >= n - 1 {
                break (a, b);
            }
        };
        let (sr, sc) = (start / n, start % n);
        let (gr, gc) = (goal / n, goal % n);
        let vertical = if gr >= sr { Move::Down } else { Move::Up };
        let horizontal = if gc >= sc { Move::Right } else { Move::Left };
        let mut moves = vec![vertical; gr.abs_diff(sr)];
        moves.extend(vec![horizontal; gc.abs_diff(sc)]);
        rng.shuffle(&mut moves);

        let mut on_path = vec![false; cells];
        on_path[start] = true;
        let mut pos = start;
        for m in moves {
            // The path is monotone towards the goal, so it never leaves the map.
            pos = neighbour(n, pos, m).unwrap_or(pos);
            on_path[pos] = true;
        }
        let mut free: Vec<usize> = (0..cells).filter(|&i| !on_path[i]).collect();
        rng.shuffle(&mut free);
        let n_holes = (config.hole_fraction * free.len() as f64).round() as usize;
        let mut tiles = vec![Tile::Frozen; cells];
        for &i in free.iter().take(n_holes) {
            tiles[i] = Tile::Hole;
        }
        tiles[start] = Tile::Start;
        tiles[goal] = Tile::Goal;
        Ok(Lake {
            config: *config,
            seed,
            tiles,
            start,
            goal,
        })
    }

    /// A lake from explicit rows of `S . H G` (tests and hand-made maps). Exactly one `S`
    /// and one `G` are required; solvability is not checked.
    pub fn from_rows(rows: &[&str], slip: f64, max_steps: usize) -> Result<Lake, GymError> {
        let n = rows.len();
        let mut tiles = Vec::with_capacity(n * n);
        for (r, row) in rows.iter().enumerate() {
            if row.chars().count() != n {
                return Err(GymError::Config(format!(
                    "map row {r} has {} tiles, expected {n}",
                    row.chars().count()
                )));
            }
            for ch in row.chars() {
                tiles.push(match ch {
                    'S' => Tile::Start,
                    '.' => Tile::Frozen,
                    'H' => Tile::Hole,
                    'G' => Tile::Goal,
                    other => {
                        return Err(GymError::Config(format!(
                            "map row {r}: unknown tile {other:?} (use S . H G)"
                        )))
                    }
                });
            }
        }
        let find = |want: Tile| {
            let hits: Vec<usize> = (0..tiles.len()).filter(|&i| tiles[i] == want).collect();
            match hits.as_slice() {
                [one] => Ok(*one),
                _ => Err(GymError::Config(format!(
                    "the map needs exactly one {:?}, found {}",
                    want.symbol(),
                    hits.len()
                ))),
            }
        };
        let start = find(Tile::Start)?;
        let goal = find(Tile::Goal)?;
        let holes = tiles.iter().filter(|t| **t == Tile::Hole).count();
        let config = LakeConfig {
            size: n,
            slip,
            hole_fraction: holes as f64 / (n * n) as f64,
            max_steps,
        };
        if !(2..=26).contains(&n) || !(0.0..1.0).contains(&slip) {
            return Err(GymError::Config(format!(
                "a hand-made map needs 2..=26 rows and slip in [0, 1), got {n} rows, slip {slip}"
            )));
        }
        Ok(Lake {
            config,
            seed: 0,
            tiles,
            start,
            goal,
        })
    }

    /// The family parameters.
    pub fn config(&self) -> &LakeConfig {
        &self.config
    }

    /// The seed the map was generated from (0 for hand-made maps).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Side length.
    pub fn size(&self) -> usize {
        self.config.size
    }

    /// Number of tiles.
    pub fn n_tiles(&self) -> usize {
        self.tiles.len()
    }

    /// The tile at `pos`.
    pub fn tile(&self, pos: usize) -> Tile {
        self.tiles[pos]
    }

    /// Start tile index.
    pub fn start(&self) -> usize {
        self.start
    }

    /// Goal tile index.
    pub fn goal(&self) -> usize {
        self.goal
    }

    /// `(row, column)` of a tile index.
    pub fn coords(&self, pos: usize) -> (usize, usize) {
        (pos / self.size(), pos % self.size())
    }

    /// The tile one move away, `None` off the map.
    pub fn neighbour(&self, pos: usize, m: Move) -> Option<usize> {
        neighbour(self.size(), pos, m)
    }

    /// The map as rows of `S . H G`.
    pub fn rows(&self) -> Vec<String> {
        self.tiles
            .chunks(self.size())
            .map(|row| row.iter().map(|t| t.symbol()).collect())
            .collect()
    }

    /// The start state `(start, 0)`.
    pub fn initial(&self) -> State {
        State {
            pos: self.start,
            t: 0,
        }
    }

    /// How `s` stands: goal and hole tiles are terminal, then the step limit.
    pub fn status(&self, s: State) -> Status {
        match self.tiles[s.pos] {
            Tile::Goal => Status::Goal,
            Tile::Hole => Status::Hole,
            _ if s.t >= self.config.max_steps => Status::OutOfSteps,
            _ => Status::Running,
        }
    }

    /// Where the agent lands when it actually goes `m` from `pos` (bumping stays put).
    fn land(&self, pos: usize, m: Move) -> usize {
        self.neighbour(pos, m).unwrap_or(pos)
    }

    /// The exact distribution of `(next state, direction taken)`; directions are listed
    /// intended first, then the perpendicular pair; probabilities are not merged.
    fn branches(&self, s: State, a: Action) -> Vec<(State, Option<Move>, f64)> {
        let t = s.t + 1;
        match a {
            Action::Invalid => vec![(State { pos: s.pos, t }, None, 1.0)],
            Action::Move(m) => {
                let p = self.config.slip;
                let mut out = vec![(
                    State {
                        pos: self.land(s.pos, m),
                        t,
                    },
                    Some(m),
                    1.0 - p,
                )];
                if p > 0.0 {
                    for side in m.perpendicular() {
                        out.push((
                            State {
                                pos: self.land(s.pos, side),
                                t,
                            },
                            Some(side),
                            p / 2.0,
                        ));
                    }
                }
                out
            }
        }
    }

    /// The exact next-state distribution of action `a` in `s`, with equal next states
    /// merged, in order of first appearance (intended direction first). Empty when `s` is
    /// terminal: nothing happens after the end.
    pub fn outcomes(&self, s: State, a: Action) -> Vec<(State, f64)> {
        if self.status(s).is_done() {
            return Vec::new();
        }
        let mut out: Vec<(State, f64)> = Vec::with_capacity(3);
        for (next, _, p) in self.branches(s, a) {
            match out.iter_mut().find(|(o, _)| *o == next) {
                Some(slot) => slot.1 += p,
                None => out.push((next, p)),
            }
        }
        out
    }

    /// Samples one transition. Calling it on a terminal state is a caller bug; it returns a
    /// step that stays terminal and changes nothing (same state, reward 0).
    pub fn step(&self, s: State, a: Action, rng: &mut SplitMix64) -> Step {
        let status = self.status(s);
        if status.is_done() {
            let mut step = Step {
                from: s,
                action: a,
                moved: None,
                state: s,
                reward: 0.0,
                status,
                observation: String::new(),
            };
            step.observation = protocol::observation_message(self, &step);
            return step;
        }
        let branches = self.branches(s, a);
        let u = rng.next_f64();
        let mut acc = 0.0;
        let mut chosen = branches.len() - 1;
        for (i, (_, _, p)) in branches.iter().enumerate() {
            acc += p;
            if u < acc {
                chosen = i;
                break;
            }
        }
        let (next, moved, _) = branches[chosen];
        self.make_step(s, a, moved, next)
    }

    /// Every possible transition of `a` in running state `s`, with its probability: the
    /// intended direction first, then the slips (not merged, so each keeps its observation;
    /// empty when `s` is terminal). What a caller that must follow a given branch, rather
    /// than sample one, steps through (the canonical histories of the soft ground truth).
    pub fn step_branches(&self, s: State, a: Action) -> Vec<(Step, f64)> {
        if self.status(s).is_done() {
            return Vec::new();
        }
        self.branches(s, a)
            .into_iter()
            .filter(|(_, _, p)| *p > 0.0)
            .map(|(next, moved, p)| (self.make_step(s, a, moved, next), p))
            .collect()
    }

    fn make_step(&self, s: State, a: Action, moved: Option<Move>, next: State) -> Step {
        let status = self.status(next);
        let mut step = Step {
            from: s,
            action: a,
            moved,
            state: next,
            reward: if status == Status::Goal { 1.0 } else { 0.0 },
            status,
            observation: String::new(),
        };
        step.observation = protocol::observation_message(self, &step);
        step
    }
}

impl Environment for Lake {
    fn task(&self) -> String {
        protocol::task_message(self)
    }

    fn initial(&self) -> State {
        Lake::initial(self)
    }

    fn status(&self, s: State) -> Status {
        Lake::status(self, s)
    }

    fn step_text(
        &self,
        s: State,
        text: &str,
        style: protocol::ActionStyle,
        rng: &mut SplitMix64,
    ) -> Step {
        self.step(s, protocol::parse_action(text, style), rng)
    }
}

fn manhattan(n: usize, a: usize, b: usize) -> usize {
    (a / n).abs_diff(b / n) + (a % n).abs_diff(b % n)
}

fn neighbour(n: usize, pos: usize, m: Move) -> Option<usize> {
    let (dr, dc) = m.delta();
    let r = (pos / n).checked_add_signed(dr)?;
    let c = (pos % n).checked_add_signed(dc)?;
    (r < n && c < n).then_some(r * n + c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::VecDeque;

    /// Shortest hole-free path length from start to goal by BFS (an independent check of
    /// the construction).
    fn bfs_distance(lake: &Lake) -> Option<usize> {
        let mut dist = vec![usize::MAX; lake.n_tiles()];
        let mut queue = VecDeque::from([lake.start()]);
        dist[lake.start()] = 0;
        while let Some(p) = queue.pop_front() {
            if p == lake.goal() {
                return Some(dist[p]);
            }
            for m in Move::ALL {
                if let Some(q) = lake.neighbour(p, m) {
                    if lake.tile(q) != Tile::Hole && dist[q] == usize::MAX {
                        dist[q] = dist[p] + 1;
                        queue.push_back(q);
                    }
                }
            }
        }
        None
    }

    #[test]
    fn generated_maps_are_solvable_within_the_step_limit() {
        for size in 2..=8 {
            for hole_fraction in [0.0, 0.2, 0.5, 0.9] {
                let config = LakeConfig {
                    size,
                    slip: 0.2,
                    hole_fraction,
                    max_steps: 2 * size + 4,
                };
                for seed in 0..50 {
                    let lake = Lake::generate(&config, seed).unwrap();
                    let d = bfs_distance(&lake).expect("solvable");
                    // The guaranteed path is monotone, so BFS finds the Manhattan distance.
                    assert_eq!(d, manhattan(size, lake.start(), lake.goal()));
                    assert!(d >= size - 1 && d <= config.max_steps);
                    let holes = lake.rows().concat().matches('H').count();
                    let free = size * size - (d + 1);
                    assert_eq!(holes, (hole_fraction * free as f64).round() as usize);
                    assert_eq!(lake, Lake::generate(&config, seed).unwrap());
                }
            }
        }
    }

    #[test]
    fn bad_configs_are_rejected() {
        let ok = LakeConfig::default();
        for bad in [
            LakeConfig { size: 1, ..ok },
            LakeConfig { slip: 1.0, ..ok },
            LakeConfig { slip: -0.1, ..ok },
            LakeConfig {
                hole_fraction: 1.0,
                ..ok
            },
            LakeConfig { max_steps: 7, ..ok },
        ] {
            assert!(Lake::generate(&bad, 0).is_err(), "{bad:?}");
        }
        assert!(Lake::from_rows(&["S.", ".X"], 0.1, 4).is_err());
        assert!(Lake::from_rows(&["S.", ".."], 0.1, 4).is_err());
        assert!(Lake::from_rows(&["S..", ".G"], 0.1, 4).is_err());
    }

    #[test]
    fn outcomes_are_exact_and_merge_bumps() {
        // S at a corner: up and left both bump, so "up" stays with 1 - p + p/2 and goes
        // right with p/2.
        let lake = Lake::from_rows(&["S.", ".G"], 0.2, 4).unwrap();
        let s = lake.initial();
        let up = lake.outcomes(s, Action::Move(Move::Up));
        assert_eq!(up.len(), 2);
        assert_eq!(up[0].0, State { pos: 0, t: 1 });
        assert!((up[0].1 - 0.9).abs() < 1e-15);
        assert_eq!(up[1].0, State { pos: 1, t: 1 });
        assert!((up[1].1 - 0.1).abs() < 1e-15);
        let inv = lake.outcomes(s, Action::Invalid);
        assert_eq!(inv, vec![(State { pos: 0, t: 1 }, 1.0)]);
        for a in Action::ALL {
            let total: f64 = lake.outcomes(s, a).iter().map(|o| o.1).sum();
            assert!((total - 1.0).abs() < 1e-15);
        }
        assert!(lake
            .outcomes(State { pos: 3, t: 1 }, Action::Invalid)
            .is_empty());
        assert!(lake
            .outcomes(State { pos: 0, t: 4 }, Action::Invalid)
            .is_empty());
    }

    /// Empirical slip frequency vs `p` over many steps: the count of sideways moves is
    /// Binomial(n, p), so it must lie within 5 standard deviations of `n·p` (a false alarm
    /// has probability below 1e-6; the test is deterministic from its seed anyway).
    #[test]
    fn slip_frequencies_match_the_dynamics() {
        let rows = [".....", ".....", "..S..", ".....", "....G"];
        for p in [0.1, 0.2, 0.4] {
            let lake = Lake::from_rows(&rows, p, 1000).unwrap();
            let mut rng = SplitMix64::new(7);
            let n = 40_000;
            let (mut slipped, mut left, mut right) = (0usize, 0usize, 0usize);
            for i in 0..n {
                // From the centre every direction stays on the map.
                let s = State { pos: 12, t: 0 };
                let m = Move::ALL[i % 4];
                let step = lake.step(s, Action::Move(m), &mut rng);
                if step.slipped() {
                    slipped += 1;
                    let [a, _] = m.perpendicular();
                    if step.moved == Some(a) {
                        left += 1;
                    } else {
                        right += 1;
                    }
                }
                let moved = step.moved.unwrap();
                assert_eq!(Some(step.state.pos), lake.neighbour(12, moved));
                assert_eq!(step.state.t, 1);
            }
            let sd = (n as f64 * p * (1.0 - p)).sqrt();
            assert!(
                (slipped as f64 - n as f64 * p).abs() < 5.0 * sd,
                "p={p}: {slipped} slips of {n}"
            );
            // Given a slip, each side is Binomial(slips, 1/2).
            let sd_side = (slipped as f64 * 0.25).sqrt();
            assert!((left as f64 - slipped as f64 / 2.0).abs() < 5.0 * sd_side);
            assert_eq!(left + right, slipped);
        }
    }

    #[test]
    fn holes_goal_and_step_limit_end_episodes() {
        // No slip: every move is deterministic.
        let lake = Lake::from_rows(&["SH.", "...", "..G"], 0.0, 4).unwrap();
        let mut rng = SplitMix64::new(1);
        let s = lake.initial();
        let hole = lake.step(s, Action::Move(Move::Right), &mut rng);
        assert_eq!(hole.status, Status::Hole);
        assert!(hole.done());
        assert_eq!(hole.reward, 0.0);

        let mut s = lake.initial();
        let mut total = 0.0;
        for m in [Move::Down, Move::Down, Move::Right, Move::Right] {
            let step = lake.step(s, Action::Move(m), &mut rng);
            total += step.reward;
            s = step.state;
            if step.done() {
                assert_eq!(step.status, Status::Goal);
                assert_eq!(step.reward, 1.0);
            }
        }
        assert_eq!(total, 1.0);
        assert_eq!(lake.status(s), Status::Goal);

        // Invalid actions stay put and use up the budget.
        let mut s = lake.initial();
        for i in 0..4 {
            let step = lake.step(s, Action::Invalid, &mut rng);
            assert_eq!(step.state.pos, lake.start());
            assert_eq!(step.done(), i == 3);
            s = step.state;
        }
        assert_eq!(lake.status(s), Status::OutOfSteps);
        let after = lake.step(s, Action::Move(Move::Down), &mut rng);
        assert_eq!(after.state, s);
        assert_eq!(after.reward, 0.0);
    }
}
