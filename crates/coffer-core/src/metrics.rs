//! Counters of the request pipeline and their Prometheus rendering for `sys/metrics`: requests
//! by outcome, and the state of every audit device, so that operators see a failing device or a
//! flood of refusals at once.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use coffer_sdk::Error;

use crate::audit::DeviceHealth;

/// Pipeline counters; each request costs one relaxed atomic increment.
#[derive(Default)]
pub struct Metrics {
    ok: AtomicU64,
    denied: AtomicU64,
    client_error: AtomicU64,
    sealed: AtomicU64,
    server_error: AtomicU64,
}

impl Metrics {
    /// Counts the outcome of one request.
    pub fn record<T>(&self, result: &Result<T, Error>) {
        let counter = match result {
            Ok(_) => &self.ok,
            Err(Error::PermissionDenied | Error::Forbidden(_)) => &self.denied,
            Err(Error::Sealed) => &self.sealed,
            Err(Error::Internal(_) | Error::Unavailable(_)) => &self.server_error,
            Err(_) => &self.client_error,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition of the counters and the audit devices.
    pub fn render(&self, sealed: bool, devices: &[DeviceHealth]) -> String {
        let mut out = String::with_capacity(1024);
        out.push_str("# HELP coffer_requests_total Logical requests by outcome.\n");
        out.push_str("# TYPE coffer_requests_total counter\n");
        for (outcome, counter) in [
            ("ok", &self.ok),
            ("denied", &self.denied),
            ("client_error", &self.client_error),
            ("sealed", &self.sealed),
            ("server_error", &self.server_error),
        ] {
            let _ = writeln!(
                out,
                "coffer_requests_total{{outcome=\"{outcome}\"}} {}",
                counter.load(Ordering::Relaxed)
            );
        }
        out.push_str("# HELP coffer_core_unsealed Whether the vault is unsealed.\n");
        out.push_str("# TYPE coffer_core_unsealed gauge\n");
        let _ = writeln!(out, "coffer_core_unsealed {}", u8::from(!sealed));
        out.push_str("# HELP coffer_audit_device_healthy Whether an audit device is writing.\n");
        out.push_str("# TYPE coffer_audit_device_healthy gauge\n");
        for d in devices {
            let _ = writeln!(
                out,
                "coffer_audit_device_healthy{{path=\"{}\"}} {}",
                d.path,
                u8::from(d.status == "healthy")
            );
        }
        out.push_str(
            "# HELP coffer_audit_device_entries_total Audit entries by device and fate.\n",
        );
        out.push_str("# TYPE coffer_audit_device_entries_total counter\n");
        for d in devices {
            let _ = writeln!(
                out,
                "coffer_audit_device_entries_total{{path=\"{}\",fate=\"written\"}} {}",
                d.path, d.written
            );
            let _ = writeln!(
                out,
                "coffer_audit_device_entries_total{{path=\"{}\",fate=\"dropped\"}} {}",
                d.path, d.dropped
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_outcomes_and_renders_prometheus_text() {
        let metrics = Metrics::default();
        metrics.record::<()>(&Ok(()));
        metrics.record::<()>(&Ok(()));
        metrics.record::<()>(&Err(Error::acl_denied()));
        metrics.record::<()>(&Err(Error::invalid("x")));
        let text = metrics.render(false, &[]);
        assert!(
            text.contains("coffer_requests_total{outcome=\"ok\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("coffer_requests_total{outcome=\"denied\"} 1\n"));
        assert!(text.contains("coffer_requests_total{outcome=\"client_error\"} 1\n"));
        assert!(text.contains("coffer_core_unsealed 1\n"));
    }
}
