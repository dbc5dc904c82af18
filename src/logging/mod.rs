//! The node's log lines, on stderr (journald keeps and rotates them under systemd) or in a file
//! logrotate can rotate: plain text for people at a terminal, or one JSON object per line for log
//! collectors; either way every line names the node, so the lines of several nodes can be merged
//! and still be told apart.

mod file;
mod throttle;

pub use file::LogFile;
use std::sync::Arc;
pub use throttle::LogThrottle;
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Full, Json, JsonFields, Writer};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// `node_id=ID` then tracing's usual line: time, level, target, message, fields.
    Text,
    /// One JSON object per line, with a `node_id` member beside tracing's own.
    Json,
}

/// Installs the process's log subscriber: lines in `format`, filtered by `filter`, each naming
/// `node_id`, on stderr or appended to `file`. Colours only on a terminal.
pub fn init(format: LogFormat, node_id: &str, filter: EnvFilter, file: Option<Arc<LogFile>>) {
    let ansi = file.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let writer = match file {
        Some(file) => BoxMakeWriter::new(file),
        None => BoxMakeWriter::new(std::io::stderr),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer).with_ansi(ansi);
    match format {
        LogFormat::Text => {
            builder.event_format(NodeText { node_id: node_id.to_owned(), inner: Format::default() }).init()
        }
        LogFormat::Json => builder
            .fmt_fields(JsonFields::new())
            .event_format(NodeJson { node_id: node_id.to_owned(), inner: Format::default().json() })
            .init(),
    }
}

/// Text lines that begin with the node's id.
struct NodeText {
    node_id: String,
    inner: Format<Full>,
}

impl<S, N> FormatEvent<S, N> for NodeText
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        write!(writer, "node_id={} ", self.node_id)?;
        self.inner.format_event(ctx, writer, event)
    }
}

/// JSON lines with a `node_id` member first.
struct NodeJson {
    node_id: String,
    inner: Format<Json>,
}

impl<S> FormatEvent<S, JsonFields> for NodeJson
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let mut line = String::new();
        self.inner.format_event(ctx, Writer::new(&mut line), event)?;
        // tracing's JSON line is an object: the id goes in as its first member.
        let rest = line.strip_prefix('{').ok_or(std::fmt::Error)?;
        let id = serde_json::to_string(&self.node_id).map_err(|_| std::fmt::Error)?;
        let separator = if rest.trim_start().starts_with('}') { "" } else { "," };
        write!(writer, "{{\"node_id\":{id}{separator}{rest}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A writer that keeps what the subscriber writes.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn lines_of(format: LogFormat) -> Vec<String> {
        let captured = Captured::default();
        let writer = {
            let captured = captured.clone();
            move || captured.clone()
        };
        let builder = tracing_subscriber::fmt().with_writer(writer).with_ansi(false);
        let log = || tracing::warn!(offset = 7, topic = "x.blocks", "rejected message: \"quoted\"");
        match format {
            LogFormat::Text => tracing::subscriber::with_default(
                builder.event_format(NodeText { node_id: "node-1".into(), inner: Format::default() }).finish(),
                log,
            ),
            LogFormat::Json => tracing::subscriber::with_default(
                builder
                    .fmt_fields(JsonFields::new())
                    .event_format(NodeJson { node_id: "node-1".into(), inner: Format::default().json() })
                    .finish(),
                log,
            ),
        }
        let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        text.lines().map(str::to_owned).collect()
    }

    #[test]
    fn every_json_line_is_an_object_naming_the_node() {
        let lines = lines_of(LogFormat::Json);
        assert_eq!(lines.len(), 1, "{lines:?}");
        let line: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
        assert_eq!(line["node_id"], "node-1");
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["fields"]["message"], "rejected message: \"quoted\"");
        assert_eq!(line["fields"]["offset"], 7);
    }

    #[test]
    fn every_text_line_begins_with_the_node() {
        let lines = lines_of(LogFormat::Text);
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].starts_with("node_id=node-1 "), "{}", lines[0]);
        assert!(lines[0].contains("WARN") && lines[0].contains("offset=7"), "{}", lines[0]);
    }
}
