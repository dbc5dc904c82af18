//! Kafka's own yardsticks, measured on the broker a benchmark just ran against: the producer
//! rate of Kafka's `ProducerPerformance` and the end-to-end latency of its `EndToEndLatency`.
//! Everything a node adds on top of the broker is kafkachain's cost, so `bench-e2e` reports its
//! figures as ratios to these, which travel between machines better than the figures do.

use serde::Serialize;
use std::path::PathBuf;
use std::process::Command;

/// Records `ProducerPerformance` sends: enough for several seconds on a small machine.
const PRODUCER_RECORDS: u64 = 1_000_000;
/// Messages `EndToEndLatency` sends, one at a time.
const LATENCY_MESSAGES: u64 = 2_000;
/// Bytes of each record and message: about a signed transfer's.
const RECORD_BYTES: u64 = 200;
/// Partitions of the producer's topic: as many as the benchmark's transactions topic.
const PRODUCER_PARTITIONS: u32 = 6;

/// How to run one of Kafka's tool classes: a command that takes the class and its arguments
/// (`scripts/kafka tool`), and the client properties file to pass on a secured cluster.
#[derive(Clone, Debug)]
pub struct KafkaTools {
    /// The command and its first arguments.
    pub command: Vec<String>,
    /// A Java client properties file (TLS and login), for a secured cluster.
    pub client_config: Option<PathBuf>,
}

/// What Kafka's own tools measured.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KafkaBaseline {
    /// `ProducerPerformance`: records of 200 bytes per second, acks=all, idempotent.
    pub producer_records_per_sec: f64,
    /// `EndToEndLatency` (200 bytes, acks=all): median produce → consumed, in milliseconds.
    pub end_to_end_p50_ms: u64,
    /// Its 99th percentile.
    pub end_to_end_p99_ms: u64,
}

/// Why Kafka's tools gave no figure.
#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The tool command could not be started.
    #[error("cannot run Kafka's {class} through {command:?}: {source}")]
    Spawn {
        /// The tool class.
        class: &'static str,
        /// The command tried.
        command: Vec<String>,
        /// Why.
        source: std::io::Error,
    },
    /// The tool ran and failed, or printed no figure this module reads.
    #[error("Kafka's {class} gave no figure (exit {status}); its last lines:\n{tail}")]
    NoFigure {
        /// The tool class.
        class: &'static str,
        /// Its exit status.
        status: std::process::ExitStatus,
        /// The end of its output.
        tail: String,
    },
}

impl KafkaTools {
    /// Runs `class` with `args` and returns what it printed (stdout then stderr).
    fn run(&self, class: &'static str, args: &[String]) -> Result<(std::process::ExitStatus, String), BaselineError> {
        let (program, first) = self.command.split_first().ok_or_else(|| BaselineError::Spawn {
            class,
            command: self.command.clone(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "an empty command"),
        })?;
        let output = Command::new(program)
            .args(first)
            .arg(class)
            .args(args)
            .output()
            .map_err(|source| BaselineError::Spawn { class, command: self.command.clone(), source })?;
        let text = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
        Ok((output.status, text))
    }

    /// Runs `class` and reads its figure with `read`, or says why there is none.
    fn figure<T>(
        &self,
        class: &'static str,
        args: &[String],
        read: impl Fn(&str) -> Option<T>,
    ) -> Result<T, BaselineError> {
        let (status, text) = self.run(class, args)?;
        match read(&text) {
            Some(figure) if status.success() => Ok(figure),
            _ => {
                let lines: Vec<&str> = text.lines().collect();
                let tail = lines[lines.len().saturating_sub(15)..].join("\n");
                Err(BaselineError::NoFigure { class, status, tail })
            }
        }
    }

    /// Measures Kafka's producer rate and end-to-end latency on `brokers`, on fresh topics named
    /// after `prefix`.
    pub fn measure(&self, brokers: &str, prefix: &str) -> Result<KafkaBaseline, BaselineError> {
        let config = self.client_config.as_ref().map(|path| path.display().to_string());
        let producer_topic = format!("{prefix}.kafka-producer");
        let mut create = strings(&["--bootstrap-server", brokers, "--create", "--topic", &producer_topic]);
        create.extend(strings(&["--partitions", &PRODUCER_PARTITIONS.to_string(), "--replication-factor", "1"]));
        if let Some(config) = &config {
            create.extend(strings(&["--command-config", config]));
        }
        self.figure("org.apache.kafka.tools.TopicCommand", &create, |text| {
            text.contains(&format!("Created topic {producer_topic}")).then_some(())
        })?;

        let mut produce = strings(&["--topic", &producer_topic, "--num-records", &PRODUCER_RECORDS.to_string()]);
        produce.extend(strings(&["--record-size", &RECORD_BYTES.to_string(), "--throughput", "-1"]));
        if let Some(config) = &config {
            produce.extend(strings(&["--producer.config", config]));
        }
        let servers = format!("bootstrap.servers={brokers}");
        produce.extend(strings(&["--producer-props", &servers, "acks=all", "enable.idempotence=true"]));
        let producer_records_per_sec =
            self.figure("org.apache.kafka.tools.ProducerPerformance", &produce, producer_rate)?;

        let latency_topic = format!("{prefix}.kafka-latency");
        let mut latency = strings(&[brokers, &latency_topic, &LATENCY_MESSAGES.to_string(), "all"]);
        latency.push(RECORD_BYTES.to_string());
        latency.extend(config);
        let (end_to_end_p50_ms, end_to_end_p99_ms) =
            self.figure("org.apache.kafka.tools.EndToEndLatency", &latency, end_to_end_percentiles)?;
        Ok(KafkaBaseline { producer_records_per_sec, end_to_end_p50_ms, end_to_end_p99_ms })
    }
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|item| (*item).to_owned()).collect()
}

/// The records per second of `ProducerPerformance`'s summary line ("N records sent, R
/// records/sec (…)"), the last such line.
fn producer_rate(text: &str) -> Option<f64> {
    let summary = text.lines().rev().find(|line| line.contains(" records sent, "))?;
    summary.split(", ").nth(1)?.split(" records/sec").next()?.parse().ok()
}

/// The 50th and 99th percentiles of `EndToEndLatency`'s last line ("Percentiles: 50th = A,
/// 99th = B, 99.9th = C").
fn end_to_end_percentiles(text: &str) -> Option<(u64, u64)> {
    let line = text.lines().rev().find_map(|line| line.strip_prefix("Percentiles: "))?;
    let value = |name: &str| {
        line.split(", ").find_map(|part| part.strip_prefix(name)?.strip_prefix(" = ")?.trim().parse().ok())
    };
    Some((value("50th")?, value("99th")?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_producers_rate_is_read_from_its_summary_line() {
        let text = "[main] INFO a line\n\
            417560 records sent, 83512.0 records/sec (15.93 MB/sec), 1.1 ms avg latency, 300.0 ms max latency.\n\
            1000000 records sent, 113593.335858 records/sec (21.67 MB/sec), 101.17 ms avg latency, 458.00 ms max \
            latency, 81 ms 50th, 297 ms 95th, 342 ms 99th, 363 ms 99.9th.\n\
            [main] INFO org.apache.kafka.common.metrics.Metrics - Metrics reporters closed\n";
        assert_eq!(producer_rate(text), Some(113_593.335858));
        assert_eq!(producer_rate("[main] ERROR no broker\n"), None);
    }

    #[test]
    fn the_end_to_end_percentiles_are_read_from_the_last_line() {
        let text =
            "0\t60.956674\nAvg latency: 1.9488 ms\nPercentiles: 50th = 1, 99th = 8, 99.9th = 60\n[main] INFO x\n";
        assert_eq!(end_to_end_percentiles(text), Some((1, 8)));
        assert_eq!(end_to_end_percentiles("Avg latency: 1.9 ms\n"), None);
    }

    #[test]
    fn a_tool_that_fails_says_so_with_its_last_lines() {
        let tools = KafkaTools { command: strings(&["sh", "-c", "echo broken; exit 3", "tool"]), client_config: None };
        let err = tools.measure("127.0.0.1:1", "p").unwrap_err().to_string();
        assert!(
            err.starts_with("Kafka's org.apache.kafka.tools.TopicCommand gave no figure (exit exit status: 3)"),
            "{err}"
        );
        assert!(err.ends_with("broken"), "{err}");
        let missing = KafkaTools { command: strings(&["/nonexistent/kafka"]), client_config: None };
        assert!(matches!(missing.measure("127.0.0.1:1", "p"), Err(BaselineError::Spawn { .. })));
    }
}
