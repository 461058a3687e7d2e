//! The judges' prompts and how a trajectory is written into them.
//!
//! WildReward and ThinkPRM follow the reference implementation (paper-notes §8): the
//! templates verbatim, the renderings and the character limits as recorded there. Where the
//! notes leave a detail open, the choice made here is stated on the function (e.g. how a
//! tool call's arguments print in the WildReward transcript). The LLM-judge prompt is
//! padv's own ([`LLM_JUDGE_TEMPLATE`]); the paper's judge prompt was not recovered.
//!
//! Limits are in characters (Unicode scalar values, as Python's `str` slicing counts them):
//! the *last* N characters are kept, so the end of a long trajectory — where it succeeds or
//! fails — is always in the prompt.

use crate::render::{paper_body, py_repr};
use crate::trajectory::{ActionText, Message, Trajectory};

/// Changes whenever a prompt or rendering below changes, so cached judge answers to an
/// older prompt are not reused.
pub const PROMPT_VERSION: &str = "padv-judge-prompts-1";

/// WildReward-8B's prompt (verbatim from the reference code).
pub const WILDREWARD_TEMPLATE: &str = "# Task Description
You are an expert conversation evaluator. Your task is to judge the **User's Satisfaction** with the Assistant's response based on the conversation context.
Please rate the response on a scale of 1 to 5 integers.

# Scoring Criteria
[1] CLEARLY NEGATIVE / REJECTION
[2] CORRECTION / ERROR POINTER (Negative)
[3] NEUTRAL
[4] POSITIVE ENGAGEMENT
[5] CLEAR SATISFACTION

# Input Data
## Context (History)
{history}

## User Query
{query}

## Assistant Response
{response}

# Output
Based on the criteria above, please output ONLY the integer score (1, 2, 3, 4, or 5).";

/// Characters of the flattened trajectory kept in the WildReward prompt.
pub const WILDREWARD_RESPONSE_CHARS: usize = 24_000;

/// Tokens of the WildReward input kept (the first ones: the tokenizer truncates on the right).
pub const WILDREWARD_MAX_TOKENS: usize = 4_096;

/// ThinkPRM's prompt for agent trajectories (verbatim from the reference code).
pub const THINKPRM_AGENT_TEMPLATE: &str = "You are given a task and a proposed step-by-step solution:

[Task]

{task}

[Solution]

{solution}

Review and critique each step in the proposed solution to determine whether each step is correct. If the solution is incomplete, only verify the provided steps. For each step, end your critique with a single line of the form 'Step N is \\boxed{correct}' or 'Step N is \\boxed{incorrect}'.";

/// ThinkPRM's prompt for failure attribution (multi-agent logs): the reference's opening
/// sentence and the agent template's body without the "incomplete" sentence (paper-notes
/// §8 describes it that way; the exact joining is reconstructed).
pub const THINKPRM_FA_TEMPLATE: &str = "You are given a multi-agent problem-solving trajectory and must verify each step.

[Task]

{task}

[Solution]

{solution}

Review and critique each step in the proposed solution to determine whether each step is correct. For each step, end your critique with a single line of the form 'Step N is \\boxed{correct}' or 'Step N is \\boxed{incorrect}'.";

/// Appended after the chat template's generation prompt (the start of the PRM's answer).
pub const THINKPRM_ANSWER_PREFIX: &str = "\nLet's verify step by step:";

/// Characters of the solution kept: agent trajectories.
pub const THINKPRM_AGENT_CHARS: usize = 22_000;

/// Characters of the solution kept: failure attribution.
pub const THINKPRM_FA_CHARS: usize = 20_000;

/// padv's LLM-judge prompt: asks for a success probability on a final `PROBABILITY:` line
/// (read by [`super::verdict::judge_probability`]).
pub const LLM_JUDGE_TEMPLATE: &str = "You are judging whether an AI agent completed its task. Read the task and the agent's trajectory, then estimate the probability that the task was completed successfully (all of the user's requests fulfilled, and no rule or policy given to the agent broken).

[Task]

{task}

[Trajectory]

{trajectory}

Explain your reasoning briefly, then end your answer with one line of the form 'PROBABILITY: p', where p is a number between 0 and 1 (for example 'PROBABILITY: 0.35').";

/// Characters of the transcript kept in the LLM-judge prompt.
pub const LLM_JUDGE_CHARS: usize = 24_000;

/// The last `n` characters of `s`.
pub fn last_chars(s: &str, n: usize) -> &str {
    let count = s.chars().count();
    if count <= n {
        return s;
    }
    let skip = count - n;
    match s.char_indices().nth(skip) {
        Some((i, _)) => &s[i..],
        None => "",
    }
}

/// Fills `{name}` placeholders in one pass, so text substituted for one placeholder is never
/// scanned for another (a trajectory that contains "{solution}" stays as it is).
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out =
        String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    'outer: while let Some(open) = rest.find('{') {
        for (name, value) in values {
            let key_end = open + 1 + name.len();
            if rest[open + 1..].starts_with(name) && rest[key_end..].starts_with('}') {
                out.push_str(&rest[..open]);
                out.push_str(value);
                rest = &rest[key_end + 1..];
                continue 'outer;
            }
        }
        out.push_str(&rest[..=open]);
        rest = &rest[open + 1..];
    }
    out.push_str(rest);
    out
}

fn is_user(m: &Message) -> bool {
    matches!(m.role.as_str(), "user" | "human")
}

/// The task of a trajectory: the first user (or Who&When `human`) message whose content is
/// not blank, verbatim; empty when there is none.
pub fn task_text(t: &Trajectory) -> &str {
    t.messages
        .iter()
        .filter(|m| is_user(m))
        .filter_map(|m| m.content.as_deref())
        .find(|c| !c.trim().is_empty())
        .unwrap_or("")
}

/// One message as a transcript line: `[role]: content`, and for each tool call a further
/// line `tool_call: name(ARGS)` with ARGS printed as Python prints the arguments (as in the
/// paper rendering).
pub fn transcript_line(m: &Message) -> String {
    let mut line = format!("[{}]: {}", m.role, m.content.as_deref().unwrap_or(""));
    for c in &m.tool_calls {
        line.push_str(&format!(
            "\ntool_call: {}({})",
            c.name,
            py_repr(&c.arguments)
        ));
    }
    line
}

/// The whole trajectory flattened as [`transcript_line`]s joined by newlines.
pub fn transcript(t: &Trajectory) -> String {
    t.messages
        .iter()
        .map(transcript_line)
        .collect::<Vec<_>>()
        .join("\n")
}

/// The WildReward prompt of a trajectory: history empty, query the [`task_text`], response
/// the last [`WILDREWARD_RESPONSE_CHARS`] characters of the [`transcript`]. (The token limit,
/// [`WILDREWARD_MAX_TOKENS`], is applied by the tokenizer.)
pub fn wildreward_prompt(t: &Trajectory) -> String {
    let response = transcript(t);
    fill(
        WILDREWARD_TEMPLATE,
        &[
            ("history", ""),
            ("query", task_text(t)),
            ("response", last_chars(&response, WILDREWARD_RESPONSE_CHARS)),
        ],
    )
}

/// Which ThinkPRM template a trajectory gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrmTemplate {
    /// Agent trajectories (tau2, chat logs): each action is a step, the observations after it
    /// belong to it.
    Agent,
    /// Failure attribution (Who&When): every message is a step.
    FailureAttribution,
}

impl PrmTemplate {
    /// The template the reference uses for this trajectory's source: failure attribution for
    /// Who&When logs (rendered verbatim), the agent template otherwise.
    pub fn for_trajectory(t: &Trajectory) -> PrmTemplate {
        if t.action_text == ActionText::Verbatim {
            PrmTemplate::FailureAttribution
        } else {
            PrmTemplate::Agent
        }
    }
}

/// A ThinkPRM prompt (before the chat template) and which message each step number stands
/// for.
#[derive(Debug, Clone, PartialEq)]
pub struct PrmPrompt {
    /// The filled template.
    pub prompt: String,
    /// `step_messages[n - 1]` is the message index of "Step n".
    pub step_messages: Vec<usize>,
    /// Which of those are action messages (only they get a step score in the record; the
    /// reference gives observation steps 1.0).
    pub step_is_action: Vec<bool>,
}

/// The ThinkPRM prompt of `t`.
///
/// - Agent: action n (1-based, in order) becomes `Step n:\n<action>` with the paper
///   rendering's action body (content and `tool_call(NAME, ARGS)` lines, stripped), each
///   non-action message after it appended as `\nObservation:\n[role]: content`; steps are
///   separated by a blank line. Messages before the first action form no step (the task is
///   the [`task_text`]).
/// - Failure attribution: message i becomes `Step {i+1} [role]:\n<content>`, blank lines
///   between. Step numbers start at 1 in both (padv's choice; "Step 0" reads unnaturally).
///
/// The solution keeps its last [`THINKPRM_AGENT_CHARS`] / [`THINKPRM_FA_CHARS`] characters.
pub fn thinkprm_prompt(t: &Trajectory, template: PrmTemplate) -> PrmPrompt {
    let mut blocks: Vec<String> = Vec::new();
    let mut step_messages = Vec::new();
    let mut step_is_action = Vec::new();
    match template {
        PrmTemplate::Agent => {
            for (i, m) in t.messages.iter().enumerate() {
                if m.is_action {
                    step_messages.push(i);
                    step_is_action.push(true);
                    blocks.push(format!("Step {}:\n{}", step_messages.len(), paper_body(m)));
                } else if let Some(last) = blocks.last_mut() {
                    last.push_str(&format!(
                        "\nObservation:\n[{}]: {}",
                        m.role,
                        m.content.as_deref().unwrap_or("")
                    ));
                }
            }
        }
        PrmTemplate::FailureAttribution => {
            for (i, m) in t.messages.iter().enumerate() {
                step_messages.push(i);
                step_is_action.push(m.is_action);
                blocks.push(format!(
                    "Step {} [{}]:\n{}",
                    i + 1,
                    m.role,
                    m.content.as_deref().unwrap_or("")
                ));
            }
        }
    }
    let solution = blocks.join("\n\n");
    let (tpl, limit) = match template {
        PrmTemplate::Agent => (THINKPRM_AGENT_TEMPLATE, THINKPRM_AGENT_CHARS),
        PrmTemplate::FailureAttribution => (THINKPRM_FA_TEMPLATE, THINKPRM_FA_CHARS),
    };
    PrmPrompt {
        prompt: fill(
            tpl,
            &[
                ("task", task_text(t)),
                ("solution", last_chars(&solution, limit)),
            ],
        ),
        step_messages,
        step_is_action,
    }
}

/// padv's LLM-judge prompt of `t` ([`LLM_JUDGE_TEMPLATE`] with the [`task_text`] and the
/// last [`LLM_JUDGE_CHARS`] characters of the [`transcript`]).
pub fn llm_judge_prompt(t: &Trajectory) -> String {
    let tr = transcript(t);
    fill(
        LLM_JUDGE_TEMPLATE,
        &[
            ("task", task_text(t)),
            ("trajectory", last_chars(&tr, LLM_JUDGE_CHARS)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trajectory::ToolCall;
    use serde_json::json;

    fn msg(role: &str, content: Option<&str>, is_action: bool) -> Message {
        Message {
            role: role.into(),
            content: content.map(str::to_string),
            is_action,
            ..Default::default()
        }
    }

    fn tau2_like() -> Trajectory {
        let mut call = msg("assistant", Some("Let me look."), true);
        call.tool_calls = vec![ToolCall {
            id: None,
            name: "get_user".into(),
            arguments: json!({"user_id": "u1", "n": 2}),
        }];
        Trajectory {
            id: "t".into(),
            task_id: "k".into(),
            messages: vec![
                msg("system", Some("Policy."), false),
                msg("user", Some("  "), false),
                msg("user", Some("Cancel my trip {solution}."), false),
                call,
                msg("tool", Some("{\"name\": \"Ann\"}"), false),
                msg("assistant", Some("Done."), true),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn last_chars_counts_characters() {
        assert_eq!(last_chars("héllo", 3), "llo");
        assert_eq!(last_chars("héllo", 4), "éllo");
        assert_eq!(last_chars("ab", 5), "ab");
        assert_eq!(last_chars("ab", 0), "");
    }

    #[test]
    fn wildreward_prompt_by_hand() {
        let t = tau2_like();
        let p = wildreward_prompt(&t);
        let expected_response =
            "[system]: Policy.\n[user]:   \n[user]: Cancel my trip {solution}.\n\
            [assistant]: Let me look.\ntool_call: get_user({'user_id': 'u1', 'n': 2})\n\
            [tool]: {\"name\": \"Ann\"}\n[assistant]: Done.";
        assert!(
            p.contains(&format!(
                "## Context (History)\n\n\n## User Query\nCancel my trip {{solution}}.\n\n\
             ## Assistant Response\n{expected_response}\n\n# Output"
            )),
            "{p}"
        );
        assert!(p.starts_with("# Task Description\nYou are an expert"));
        assert!(p.ends_with("(1, 2, 3, 4, or 5)."));
    }

    #[test]
    fn thinkprm_agent_prompt_by_hand() {
        let t = tau2_like();
        let p = thinkprm_prompt(&t, PrmTemplate::Agent);
        assert_eq!(p.step_messages, vec![3, 5]);
        let solution = "Step 1:\nLet me look.\ntool_call(get_user, {'user_id': 'u1', 'n': 2})\n\
            Observation:\n[tool]: {\"name\": \"Ann\"}\n\nStep 2:\nDone.";
        assert_eq!(
            p.prompt,
            format!(
                "You are given a task and a proposed step-by-step solution:\n\n[Task]\n\n\
                 Cancel my trip {{solution}}.\n\n[Solution]\n\n{solution}\n\nReview and critique \
                 each step in the proposed solution to determine whether each step is correct. \
                 If the solution is incomplete, only verify the provided steps. For each step, \
                 end your critique with a single line of the form 'Step N is \\boxed{{correct}}' \
                 or 'Step N is \\boxed{{incorrect}}'."
            )
        );
    }

    #[test]
    fn thinkprm_fa_prompt_numbers_every_message() {
        let t = Trajectory {
            messages: vec![
                msg("human", Some("Find X."), false),
                msg("Orchestrator", Some("Plan."), true),
                msg("WebSurfer", Some("Found."), true),
            ],
            action_text: ActionText::Verbatim,
            ..Default::default()
        };
        assert_eq!(
            PrmTemplate::for_trajectory(&t),
            PrmTemplate::FailureAttribution
        );
        let p = thinkprm_prompt(&t, PrmTemplate::FailureAttribution);
        assert_eq!(p.step_messages, vec![0, 1, 2]);
        assert_eq!(p.step_is_action, vec![false, true, true]);
        assert!(p.prompt.starts_with(
            "You are given a multi-agent problem-solving trajectory and must verify each step.\n\n[Task]\n\nFind X.\n\n[Solution]\n\nStep 1 [human]:\nFind X.\n\nStep 2 [Orchestrator]:\nPlan.\n\nStep 3 [WebSurfer]:\nFound.\n\nReview"
        ));
        assert!(!p.prompt.contains("incomplete"));
    }

    #[test]
    fn long_solutions_keep_their_end() {
        let mut t = tau2_like();
        t.messages[5].content = Some("x".repeat(30_000));
        let p = thinkprm_prompt(&t, PrmTemplate::Agent);
        let sol_start = p.prompt.find("[Solution]\n\n").unwrap() + 12;
        let sol_end = p.prompt.find("\n\nReview and critique").unwrap();
        let sol = &p.prompt[sol_start..sol_end];
        assert_eq!(sol.chars().count(), THINKPRM_AGENT_CHARS);
        assert!(sol.ends_with("xxx"));
        let j = llm_judge_prompt(&t);
        assert!(j.contains("PROBABILITY: p"));
        assert!(j.len() < LLM_JUDGE_CHARS + LLM_JUDGE_TEMPLATE.len() + 100);
    }
}
