//! Flags that set up the chat template (`--chat-template`, `--chat-tools`,
//! `--enable-thinking`, `--chat-var`, `--chat-date`), shared by `render`, `score` and `serve`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Args;
use padv_engine::tokenize::{ChatOptions, FixedDate};

/// Chat-template flags; they matter only with `--renderer chat-template`.
#[derive(Debug, Clone, Default, Args)]
pub struct ChatArgs {
    /// Named chat template of the checkpoint (`default` when omitted; the tokenizer folder
    /// lists the others, e.g. `tool_use`).
    #[arg(long, value_name = "NAME")]
    pub chat_template: Option<String>,
    /// JSON file holding the list of tool schemas passed to the template as `tools`.
    #[arg(long, value_name = "FILE")]
    pub chat_tools: Option<PathBuf>,
    /// Pass `enable_thinking` to the template (Qwen3): `--enable-thinking` or
    /// `--enable-thinking=true` / `=false`; left undefined when omitted, as transformers does.
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true")]
    pub enable_thinking: Option<bool>,
    /// Extra template variable `KEY=JSON` (repeatable), e.g. `--chat-var reasoning_effort='"low"'`;
    /// a value that is not JSON is passed as a string.
    #[arg(long, value_name = "KEY=JSON")]
    pub chat_var: Vec<String>,
    /// The date `strftime_now` reports, `YYYY-MM-DD` (default 2026-01-01: renders never
    /// depend on the clock).
    #[arg(long, value_name = "DATE")]
    pub chat_date: Option<String>,
}

impl ChatArgs {
    /// The template options these flags describe.
    pub fn options(&self) -> anyhow::Result<ChatOptions> {
        let tools = match &self.chat_tools {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("reading --chat-tools {}", path.display()))?;
                let value: serde_json::Value = serde_json::from_str(&text)
                    .with_context(|| format!("parsing --chat-tools {}", path.display()))?;
                if !value.is_array() {
                    bail!(
                        "--chat-tools {}: expected a JSON list of tool schemas",
                        path.display()
                    );
                }
                Some(value)
            }
        };
        let mut vars = serde_json::Map::new();
        for var in &self.chat_var {
            let Some((key, raw)) = var.split_once('=') else {
                bail!("--chat-var {var:?}: expected KEY=JSON");
            };
            let key = key.trim();
            if key.is_empty() {
                bail!("--chat-var {var:?}: empty variable name");
            }
            let value = serde_json::from_str(raw)
                .unwrap_or_else(|_| serde_json::Value::String(raw.to_string()));
            vars.insert(key.to_string(), value);
        }
        let date = self.chat_date.as_deref().map(parse_date).transpose()?;
        ChatOptions::from_parts(
            self.chat_template.clone(),
            tools,
            vars,
            self.enable_thinking,
            date,
        )
        .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

fn parse_date(s: &str) -> anyhow::Result<FixedDate> {
    FixedDate::parse(s).map_err(|e| anyhow::anyhow!("--chat-date {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        chat: ChatArgs,
    }

    fn parse(args: &[&str]) -> anyhow::Result<ChatOptions> {
        let mut argv = vec!["padv"];
        argv.extend_from_slice(args);
        Cli::try_parse_from(argv)?.chat.options()
    }

    #[test]
    fn flags_become_template_options() {
        let o = parse(&[]).unwrap();
        assert_eq!(o, ChatOptions::default());
        let o = parse(&["--enable-thinking"]).unwrap();
        assert_eq!(o.extra["enable_thinking"], serde_json::json!(true));
        let o = parse(&["--enable-thinking=false", "--chat-template", "tool_use"]).unwrap();
        assert_eq!(o.extra["enable_thinking"], serde_json::json!(false));
        assert_eq!(o.template.as_deref(), Some("tool_use"));
        let o = parse(&[
            "--chat-var",
            "effort=\"low\"",
            "--chat-var",
            "n=3",
            "--chat-var",
            "s=hi",
        ])
        .unwrap();
        assert_eq!(o.extra["effort"], serde_json::json!("low"));
        assert_eq!(o.extra["n"], serde_json::json!(3));
        assert_eq!(o.extra["s"], serde_json::json!("hi"));
        let o = parse(&["--chat-date", "2024-02-29"]).unwrap();
        assert_eq!((o.date.year, o.date.month, o.date.day), (2024, 2, 29));
    }

    #[test]
    fn bad_flags_are_errors() {
        assert!(parse(&["--chat-date", "2023-02-29"]).is_err());
        assert!(parse(&["--chat-date", "tomorrow"]).is_err());
        assert!(parse(&["--chat-var", "novalue"]).is_err());
        assert!(parse(&["--chat-tools", "/nonexistent/tools.json"]).is_err());
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tools.json");
        std::fs::write(&f, "{\"not\": \"a list\"}").unwrap();
        assert!(parse(&["--chat-tools", f.to_str().unwrap()]).is_err());
        std::fs::write(
            &f,
            "[{\"type\": \"function\", \"function\": {\"name\": \"x\"}}]",
        )
        .unwrap();
        let o = parse(&["--chat-tools", f.to_str().unwrap()]).unwrap();
        assert_eq!(o.tools.unwrap()[0]["function"]["name"], "x");
    }
}
