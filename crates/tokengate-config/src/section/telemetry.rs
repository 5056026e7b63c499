//! `[telemetry]`: OpenTelemetry trace export.

use serde::{Deserialize, Serialize};

/// `[telemetry]`: OpenTelemetry trace export (off unless an endpoint is set).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    /// OTLP/HTTP traces endpoint, e.g. `http://otel-collector:4318/v1/traces`.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute.
    pub service_name: String,
    /// Share of new traces recorded (calls with a sampled `traceparent`
    /// follow their parent).
    pub sample_ratio: f64,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            otlp_endpoint: None,
            service_name: "tokengate".to_owned(),
            sample_ratio: 1.0,
        }
    }
}
