//! Who&When failure-attribution logs: one JSON object per file with a `history` of
//! `{role, content, name?}` messages and the annotated `mistake_step` / `mistake_agent`.
//!
//! Both splits are read by the same rules:
//! - a message is an action iff its content is non-empty, except that an opening message whose
//!   role is `human` is the task question (Hand-Crafted), not an action. No Algorithm-Generated
//!   log has a `human` role, so the exception needs no split detection;
//! - `name` (Algorithm-Generated speaker) becomes [`Message::name`]; `role` stays as written;
//! - `mistake_step` is an integer stored as a string (a JSON integer is accepted too), a 0-based
//!   index into `history`;
//! - the reward is the outcome flag when present (`is_correct` in Algorithm-Generated,
//!   `is_corrected` in Hand-Crafted): `false` → 0.0, `true` → 1.0.

use std::path::Path;

use serde_json::Value;

use super::fields::{Ctx, Obj};
use super::{message, Collector, FormatError, ROOT_FIELD};
use crate::{Message, Trajectory};

/// Read the one log of a parsed Who&When file into `out` (a malformed log is one bad record).
pub(crate) fn read(path: &Path, doc: &Value, out: &mut Collector) -> Result<(), FormatError> {
    let ctx = Ctx {
        path,
        record: "file".into(),
    };
    out.add(log(&ctx, doc))
}

/// The trajectory id: `<parent folder name>/<file stem>`, e.g. `Hand-Crafted/12`, so that the
/// two splits (which reuse file names 1..58) stay distinct when read together.
pub(crate) fn trajectory_id(path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let parent_name = |p: &Path| {
        p.parent()
            .and_then(Path::file_name)
            .map(|n| n.to_string_lossy().into_owned())
    };
    // A bare relative file name has no parent component; ask the file system for it.
    let parent = parent_name(path).or_else(|| {
        std::fs::canonicalize(path)
            .ok()
            .and_then(|abs| parent_name(&abs))
    });
    match parent {
        Some(parent) => format!("{parent}/{stem}"),
        None => stem,
    }
}

fn log(ctx: &Ctx<'_>, doc: &Value) -> Result<Trajectory, FormatError> {
    let root = ctx.object(doc, ROOT_FIELD)?;
    let history = ctx.req_array(root, "", "history")?;
    let messages = history
        .iter()
        .enumerate()
        .map(|(i, m)| history_message(ctx, m, i))
        .collect::<Result<Vec<_>, _>>()?;
    let id = trajectory_id(ctx.path);
    let task_id = ctx
        .opt_id(root, "", "question_ID")?
        .unwrap_or_else(|| id.clone());
    let mistake_step = ctx.opt_step(root, "", "mistake_step", messages.len())?;
    let mistake_agent = ctx.opt_str(root, "", "mistake_agent")?.map(str::to_owned);
    let reward = match ctx.opt_bool(root, "", "is_correct")? {
        Some(flag) => Some(flag),
        None => ctx.opt_bool(root, "", "is_corrected")?,
    }
    .map(|ok| if ok { 1.0 } else { 0.0 });
    Ok(Trajectory {
        id,
        task_id,
        messages,
        reward,
        mistake_step,
        mistake_agent,
        action_text: crate::trajectory::ActionText::Verbatim,
    })
}

fn history_message(ctx: &Ctx<'_>, value: &Value, index: usize) -> Result<Message, FormatError> {
    let prefix = format!("history[{index}]");
    let msg: &Obj = ctx.object(value, &prefix)?;
    let role = ctx.req_str(msg, &prefix, "role")?.to_owned();
    let name = ctx.opt_str(msg, &prefix, "name")?.map(str::to_owned);
    let content = message::content(ctx, msg, &prefix)?;
    let is_task_question = index == 0 && role == "human";
    let is_action = !is_task_question && content.as_deref().is_some_and(|c| !c.is_empty());
    Ok(Message {
        role,
        name,
        content,
        tool_call_id: None,
        tool_calls: Vec::new(),
        is_action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HC_PATH: &str = "data/Hand-Crafted/12.json";
    const AG_PATH: &str = "data/Algorithm-Generated/3.json";

    fn read_one(path: &str, doc: Value, strict: bool) -> Result<Collector, FormatError> {
        let mut out = Collector::new(strict);
        read(Path::new(path), &doc, &mut out)?;
        Ok(out)
    }

    fn hand_crafted() -> Value {
        json!({
            "history": [
                {"content": "What is 2+2?", "role": "human"},
                {"content": "Plan: ask the assistant.", "role": "Orchestrator (thought)"},
                {"content": "", "role": "WebSurfer"},
                {"content": "4", "role": "Assistant"}
            ],
            "question": "What is 2+2?", "ground_truth": "4", "is_corrected": false,
            "question_ID": "q-hc", "mistake_agent": "WebSurfer", "mistake_step": "2",
            "mistake_reason": "returned nothing"
        })
    }

    fn algorithm_generated() -> Value {
        json!({
            "is_correct": false, "question": "q", "question_ID": "q-ag", "level": "1",
            "history": [
                {"content": "Let us start.", "role": "assistant", "name": "Planning_Expert"},
                {"content": "exitcode: 0", "role": "user", "name": "Computer_terminal"},
                {"content": "TERMINATE", "role": "user", "name": "Verification_Expert"}
            ],
            "mistake_agent": "Verification_Expert", "mistake_step": 2,
            "system_prompt": {"Planning_Expert": "You plan."}
        })
    }

    #[test]
    fn hand_crafted_question_and_empty_messages_are_not_actions() {
        let out = read_one(HC_PATH, hand_crafted(), true).unwrap();
        let t = &out.trajectories[0];
        assert_eq!(t.id, "Hand-Crafted/12");
        assert_eq!(t.task_id, "q-hc");
        // Index 0 is the human question, index 2 is empty: actions are 1 and 3.
        assert_eq!(t.action_indices(), vec![1, 3]);
        assert_eq!(t.mistake_step, Some(2));
        assert_eq!(t.mistake_agent.as_deref(), Some("WebSurfer"));
        assert_eq!(t.reward, Some(0.0));
        assert_eq!(t.messages[1].role, "Orchestrator (thought)");
        assert_eq!(t.messages[1].name, None);
    }

    #[test]
    fn algorithm_generated_keeps_role_and_name() {
        let out = read_one(AG_PATH, algorithm_generated(), true).unwrap();
        let t = &out.trajectories[0];
        assert_eq!(t.id, "Algorithm-Generated/3");
        // The opening message is an action here: its role is not `human`.
        assert_eq!(t.action_indices(), vec![0, 1, 2]);
        assert_eq!(t.messages[1].role, "user");
        assert_eq!(t.messages[1].name.as_deref(), Some("Computer_terminal"));
        // mistake_step given as a JSON integer is accepted.
        assert_eq!(t.mistake_step, Some(2));
        assert_eq!(t.reward, Some(0.0));
    }

    #[test]
    fn absent_flags_and_question_id_fall_back() {
        let mut doc = hand_crafted();
        let root = doc.as_object_mut().unwrap();
        root.remove("is_corrected");
        root.remove("question_ID");
        root.remove("mistake_step");
        let out = read_one(HC_PATH, doc, true).unwrap();
        let t = &out.trajectories[0];
        assert_eq!(t.reward, None);
        assert_eq!(t.task_id, "Hand-Crafted/12");
        assert_eq!(t.mistake_step, None);
        let mut doc = algorithm_generated();
        doc["is_correct"] = json!(true);
        assert_eq!(
            read_one(AG_PATH, doc, true).unwrap().trajectories[0].reward,
            Some(1.0)
        );
    }

    #[test]
    fn bad_logs_name_the_field() {
        let with = |f: &dyn Fn(&mut Value)| {
            let mut d = hand_crafted();
            f(&mut d);
            d
        };
        let cases = [
            (with(&|d| d["mistake_step"] = json!("two")), "mistake_step"),
            (with(&|d| d["mistake_step"] = json!(1.5)), "mistake_step"),
            // history has 4 messages: 4 is one past the end.
            (with(&|d| d["mistake_step"] = json!("4")), "mistake_step"),
            (
                with(&|d| drop(d.as_object_mut().unwrap().remove("history"))),
                "history",
            ),
            (with(&|d| d["history"] = json!("text")), "history"),
            (
                with(&|d| d["history"][2]["role"] = json!(3)),
                "history[2].role",
            ),
            (
                with(&|d| d["history"][1]["content"] = json!({})),
                "history[1].content",
            ),
            (
                with(&|d| d["history"][1]["name"] = json!(false)),
                "history[1].name",
            ),
            (with(&|d| d["history"][3] = json!(null)), "history[3]"),
            (with(&|d| d["is_corrected"] = json!("no")), "is_corrected"),
            (
                with(&|d| d["mistake_agent"] = json!(["x"])),
                "mistake_agent",
            ),
            (with(&|d| d["question_ID"] = json!(null)), "(none)"),
        ];
        for (doc, want) in cases {
            let lenient = read_one(HC_PATH, doc.clone(), false).unwrap();
            if want == "(none)" {
                // question_ID: null is simply absent.
                assert_eq!(lenient.trajectories.len(), 1);
                continue;
            }
            assert!(lenient.trajectories.is_empty(), "{want}");
            assert!(
                matches!(&lenient.skipped[..], [FormatError::Field { field, record, .. }]
                if field == want && record == "file"),
                "{want}: {:?}",
                lenient.skipped
            );
            let strict = read_one(HC_PATH, doc, true).unwrap_err();
            assert!(
                strict.to_string().contains(&format!("field `{want}`")),
                "{strict}"
            );
        }
    }

    #[test]
    fn out_of_range_message_says_the_length() {
        let mut doc = hand_crafted();
        doc["mistake_step"] = json!("9");
        let err = read_one(HC_PATH, doc, true).unwrap_err().to_string();
        assert_eq!(
            err,
            "data/Hand-Crafted/12.json: file: field `mistake_step`: step 9 is out of range: \
             the conversation has 4 messages (indices 0 to 3)"
        );
    }
}
