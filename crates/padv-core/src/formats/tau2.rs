//! tau2-bench results JSON: `{"simulations": [{id, task_id, messages, reward_info}], ...}`.
//!
//! Only the fields padv uses are read (the `tasks` and `info` sections and per-message
//! metadata such as `raw_data` are ignored). Every `assistant` message is an action; user,
//! tool and any other role are observations.
//!
//! tau2 task ids are only unique within a domain (airline and retail both have a task "0"),
//! so when the file names its domain (`info.environment_info.domain_name`) the task id is
//! qualified as `"<domain>/<task_id>"`; otherwise best-of-N would pool rollouts of different
//! tasks from different domains.

use std::path::Path;

use serde_json::Value;

use super::fields::{record_label, Ctx, Obj};
use super::{message, Collector, FormatError, ROOT_FIELD};
use crate::{Message, Trajectory};

/// Read every simulation of a parsed tau2 results document into `out`.
///
/// A document without a `simulations` array is an error for the whole file; a malformed
/// simulation is one bad record.
pub(crate) fn read(path: &Path, doc: &Value, out: &mut Collector) -> Result<(), FormatError> {
    let file = Ctx {
        path,
        record: "file".into(),
    };
    let root = file.object(doc, ROOT_FIELD)?;
    let simulations = file.req_array(root, "", "simulations")?;
    let domain = root
        .get("info")
        .and_then(|i| i.get("environment_info"))
        .and_then(|e| e.get("domain_name"))
        .and_then(Value::as_str)
        .filter(|d| !d.is_empty());
    out.reserve(simulations.len());
    for (i, sim) in simulations.iter().enumerate() {
        let ctx = Ctx {
            path,
            record: record_label(format!("simulations[{i}]"), sim.get("id")),
        };
        out.add(simulation(&ctx, sim, domain))?;
    }
    Ok(())
}

/// One simulation as a trajectory.
fn simulation(ctx: &Ctx<'_>, sim: &Value, domain: Option<&str>) -> Result<Trajectory, FormatError> {
    let sim = ctx.object(sim, ROOT_FIELD)?;
    let id = ctx
        .opt_id(sim, "", "id")?
        .ok_or_else(|| ctx.error("id", "required field is missing"))?;
    let task_id = ctx
        .opt_id(sim, "", "task_id")?
        .ok_or_else(|| ctx.error("task_id", "required field is missing"))?;
    let task_id = match domain {
        Some(d) => format!("{d}/{task_id}"),
        None => task_id,
    };
    let reward = match sim.get("reward_info") {
        None | Some(Value::Null) => None,
        Some(info) => ctx.opt_f64(ctx.object(info, "reward_info")?, "reward_info", "reward")?,
    };
    let messages = ctx
        .req_array(sim, "", "messages")?
        .iter()
        .enumerate()
        .map(|(i, m)| tau2_message(ctx, m, &format!("messages[{i}]")))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Trajectory {
        id,
        task_id,
        messages,
        reward,
        mistake_step: None,
        mistake_agent: None,
        action_text: crate::trajectory::ActionText::ContentAndToolCalls,
    })
}

/// One tau2 message. A tool result's `id` is the id of the call it answers.
fn tau2_message(ctx: &Ctx<'_>, value: &Value, prefix: &str) -> Result<Message, FormatError> {
    let msg: &Obj = ctx.object(value, prefix)?;
    let role = ctx.req_str(msg, prefix, "role")?.to_owned();
    let content = message::content(ctx, msg, prefix)?;
    let tool_calls = message::tool_calls(ctx, msg, prefix)?;
    let tool_call_id = if role == "tool" {
        ctx.opt_id(msg, prefix, "id")?
    } else {
        None
    };
    let is_action = role == "assistant";
    Ok(Message {
        role,
        name: None,
        content,
        tool_call_id,
        tool_calls,
        is_action,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn read_doc(doc: Value, strict: bool) -> Result<Collector, FormatError> {
        let mut out = Collector::new(strict);
        read(Path::new("r.json"), &doc, &mut out)?;
        Ok(out)
    }

    fn good_sim(id: &str) -> Value {
        json!({
            "id": id, "task_id": "7", "trial": 0,
            "reward_info": {"reward": 1.0, "db_check": {"db_match": true}},
            "messages": [
                {"role": "assistant", "content": "Hi! How can I help you today?", "tool_calls": null, "turn_idx": 0},
                {"role": "user", "content": "Cancel my booking ABC.", "tool_calls": null},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "name": "get_reservation_details",
                     "arguments": {"reservation_id": "ABC"}, "requestor": "assistant"}]},
                {"role": "tool", "id": "call_1", "content": "{\"status\": \"ok\"}", "requestor": "assistant", "error": false}
            ]
        })
    }

    #[test]
    fn task_id_is_qualified_by_the_domain_when_the_file_names_it() {
        let doc = json!({
            "info": {"environment_info": {"domain_name": "retail"}},
            "simulations": [good_sim("s1")]
        });
        let out = read_doc(doc, true).unwrap();
        assert_eq!(out.trajectories[0].task_id, "retail/7");
    }

    #[test]
    fn reads_messages_actions_and_reward() {
        let out = read_doc(
            json!({"info": {}, "tasks": [], "simulations": [good_sim("s1")]}),
            false,
        )
        .unwrap();
        assert!(out.skipped.is_empty());
        let t = &out.trajectories[0];
        assert_eq!((t.id.as_str(), t.task_id.as_str()), ("s1", "7"));
        assert_eq!(t.reward, Some(1.0));
        assert_eq!(t.messages.len(), 4);
        // Actions are exactly the two assistant messages, at indices 0 and 2.
        assert_eq!(t.action_indices(), vec![0, 2]);
        assert_eq!(t.messages[2].content, None);
        assert_eq!(t.messages[2].tool_calls[0].name, "get_reservation_details");
        assert_eq!(t.messages[2].tool_calls[0].id.as_deref(), Some("call_1"));
        assert_eq!(
            t.messages[2].tool_calls[0].arguments,
            json!({"reservation_id": "ABC"})
        );
        assert_eq!(t.messages[3].tool_call_id.as_deref(), Some("call_1"));
        assert_eq!(t.messages[1].tool_call_id, None);
        assert_eq!(t.mistake_step, None);
    }

    #[test]
    fn numeric_task_id_becomes_decimal_text_and_missing_reward_is_none() {
        let mut sim = good_sim("s1");
        sim["task_id"] = json!(12);
        sim.as_object_mut().unwrap().remove("reward_info");
        let mut sim2 = good_sim("s2");
        sim2["reward_info"] = json!({"info": "no reward key"});
        let out = read_doc(json!({"simulations": [sim, sim2]}), true).unwrap();
        assert_eq!(out.trajectories[0].task_id, "12");
        assert_eq!(out.trajectories[0].reward, None);
        assert_eq!(out.trajectories[1].reward, None);
    }

    /// Each broken simulation, the field its error must name.
    fn broken_cases() -> Vec<(Value, &'static str)> {
        let with = |f: &dyn Fn(&mut Value)| {
            let mut s = good_sim("bad");
            f(&mut s);
            s
        };
        vec![
            (
                with(&|s| drop(s.as_object_mut().unwrap().remove("task_id"))),
                "task_id",
            ),
            (
                with(&|s| drop(s.as_object_mut().unwrap().remove("messages"))),
                "messages",
            ),
            (with(&|s| s["id"] = json!({"x": 1})), "id"),
            (
                with(&|s| s["reward_info"]["reward"] = json!("1.0")),
                "reward_info.reward",
            ),
            (with(&|s| s["reward_info"] = json!(1.0)), "reward_info"),
            (
                with(&|s| s["messages"][1]["role"] = json!(null)),
                "messages[1].role",
            ),
            (
                with(&|s| s["messages"][1]["content"] = json!(5)),
                "messages[1].content",
            ),
            (
                with(&|s| {
                    drop(
                        s["messages"][2]["tool_calls"][0]
                            .as_object_mut()
                            .unwrap()
                            .remove("name"),
                    )
                }),
                "messages[2].tool_calls[0].name",
            ),
            (
                with(&|s| s["messages"][3]["id"] = json!([1])),
                "messages[3].id",
            ),
            (with(&|s| s["messages"][0] = json!("hello")), "messages[0]"),
        ]
    }

    #[test]
    fn malformed_simulation_is_skipped_with_a_precise_error() {
        for (bad, want_field) in broken_cases() {
            let doc = json!({"simulations": [good_sim("ok1"), bad, good_sim("ok2")]});
            let out = read_doc(doc, false).unwrap();
            let ids: Vec<&str> = out.trajectories.iter().map(|t| t.id.as_str()).collect();
            assert_eq!(ids, ["ok1", "ok2"], "{want_field}");
            assert_eq!(out.skipped.len(), 1);
            match &out.skipped[0] {
                FormatError::Field { record, field, .. } => {
                    assert_eq!(field, want_field);
                    let want_record = if want_field == "id" {
                        "simulations[1]"
                    } else {
                        "simulations[1] (id \"bad\")"
                    };
                    assert_eq!(record, want_record);
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn strict_returns_the_first_bad_simulation() {
        let (bad, _) = broken_cases().remove(0);
        let err = read_doc(json!({"simulations": [good_sim("ok1"), bad]}), true).unwrap_err();
        let text = err.to_string();
        assert_eq!(
            text,
            "r.json: simulations[1] (id \"bad\"): field `task_id`: required field is missing"
        );
    }

    #[test]
    fn missing_or_wrong_simulations_fails_the_file_even_when_lenient() {
        for doc in [json!({"tasks": []}), json!({"simulations": {}}), json!([1])] {
            let err = read_doc(doc.clone(), false).unwrap_err();
            assert!(
                matches!(err, FormatError::Field { ref record, .. } if record == "file"),
                "{doc}: {err}"
            );
        }
    }

    #[test]
    fn non_object_simulation_is_a_bad_record() {
        let out = read_doc(json!({"simulations": [3, good_sim("ok")]}), false).unwrap();
        assert_eq!(out.trajectories.len(), 1);
        assert!(
            matches!(&out.skipped[0], FormatError::Field { record, field, .. }
            if record == "simulations[0]" && field == ROOT_FIELD)
        );
    }
}
