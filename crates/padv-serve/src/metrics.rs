//! Prometheus text exposition for `GET /metrics`, written by hand: a handful of counters and
//! one latency histogram do not justify a metrics framework and its global registry.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: [f64; 12] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Debug, Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The service's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// (route, status) → requests.
    requests: Mutex<BTreeMap<(String, u16), u64>>,
    /// route → latency histogram.
    latency: Mutex<BTreeMap<String, Histogram>>,
    tokens_scored: AtomicU64,
    sessions_evicted: AtomicU64,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, route: &str, status: u16, seconds: f64) {
        if let Ok(mut m) = self.requests.lock() {
            *m.entry((route.to_owned(), status)).or_default() += 1;
        }
        if let Ok(mut m) = self.latency.lock() {
            let h = m.entry(route.to_owned()).or_default();
            for (i, &b) in BUCKETS.iter().enumerate() {
                if seconds <= b {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += seconds;
        }
    }

    /// Adds `n` tokens pushed through the models (both models count once each).
    pub fn add_tokens(&self, n: usize) {
        self.tokens_scored.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Adds evicted sessions.
    pub fn add_evictions(&self, n: usize) {
        self.sessions_evicted.fetch_add(n as u64, Ordering::Relaxed);
    }

    /// Prometheus text format 0.0.4.
    pub fn render(&self, queue_depth: usize, sessions: usize, session_bytes: usize) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "# HELP padv_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(s, "# TYPE padv_requests_total counter");
        if let Ok(m) = self.requests.lock() {
            for ((route, status), n) in m.iter() {
                let _ = writeln!(
                    s,
                    "padv_requests_total{{route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        let _ = writeln!(s, "# HELP padv_request_duration_seconds Request latency.");
        let _ = writeln!(s, "# TYPE padv_request_duration_seconds histogram");
        if let Ok(m) = self.latency.lock() {
            for (route, h) in m.iter() {
                for (i, b) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        s,
                        "padv_request_duration_seconds_bucket{{route=\"{route}\",le=\"{b}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    s,
                    "padv_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    s,
                    "padv_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    s,
                    "padv_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        let gauges = [
            (
                "padv_tokens_scored_total",
                "counter",
                "Tokens run through a model (policy and reference counted separately).",
                self.tokens_scored.load(Ordering::Relaxed) as f64,
            ),
            (
                "padv_queue_depth",
                "gauge",
                "Requests waiting for a model worker.",
                queue_depth as f64,
            ),
            ("padv_sessions", "gauge", "Live sessions.", sessions as f64),
            (
                "padv_session_bytes",
                "gauge",
                "Estimated memory held by sessions (KV caches and per-token values).",
                session_bytes as f64,
            ),
            (
                "padv_sessions_evicted_total",
                "counter",
                "Sessions evicted under the memory bound.",
                self.sessions_evicted.load(Ordering::Relaxed) as f64,
            ),
        ];
        for (name, kind, help, v) in gauges {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe("/v1/score", 200, 0.02);
        m.observe("/v1/score", 422, 3.0);
        let text = m.render(2, 1, 10);
        assert!(text.contains("padv_requests_total{route=\"/v1/score\",status=\"200\"} 1"));
        assert!(text.contains("padv_requests_total{route=\"/v1/score\",status=\"422\"} 1"));
        // 0.02 s falls in le=0.025 and above; 3 s only from le=5 on.
        assert!(text.contains("route=\"/v1/score\",le=\"0.01\"} 0"));
        assert!(text.contains("route=\"/v1/score\",le=\"0.025\"} 1"));
        assert!(text.contains("route=\"/v1/score\",le=\"5\"} 2"));
        assert!(text.contains("route=\"/v1/score\",le=\"+Inf\"} 2"));
        assert!(text.contains("padv_queue_depth 2"));
    }
}
