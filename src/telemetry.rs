//! Logs (tracing → stderr, text or JSON), the Prometheus recorder, and, when `telemetry.otlp_endpoint`
//! is set, OpenTelemetry trace export over OTLP/HTTP.
//!
//! A server writes its log lines from a background thread through a bounded
//! queue: a slow or stalled stderr (a full pipe, a slow disk) must never
//! stall a call. When the queue is full, lines are dropped and counted
//! (`tokengate_log_lines_dropped_total`). Colours only on a terminal: in a
//! file or a Kubernetes pipe, escape codes would be stored by every
//! collector. Calls join the trace
//! of an incoming W3C `traceparent` (see [`call_span`]); the core's spans
//! (password check, signing, store calls) become its children.

use std::io::IsTerminal as _;
use std::sync::OnceLock;

use anyhow::Context as _;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use opentelemetry::propagation::{Extractor, TextMapPropagator as _};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tokengate_config::{LogFormat, TelemetryConfig};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

/// Keeps the trace exporter and the log writer alive; flushes pending spans
/// and log lines when dropped.
#[derive(Default)]
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
    /// Held for its `Drop`, which writes out the queued lines.
    _log_writer: Option<tracing_appender::non_blocking::WorkerGuard>,
}

/// Where log lines are written from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogWriter {
    /// A background thread behind a bounded queue: for the server, whose
    /// calls must not wait on stderr.
    Background,
    /// The calling thread: for one-shot commands, which must not lose a line.
    Direct,
}

/// Lines the background writer may hold before it drops new ones.
const LOG_QUEUE_LINES: usize = 65_536;

/// The background writer's count of dropped lines, once it exists.
static DROPPED_LOG_LINES: OnceLock<tracing_appender::non_blocking::ErrorCounter> = OnceLock::new();

/// Publishes the count of log lines dropped because the queue was full
/// (called before the metrics are rendered).
pub fn record_dropped_log_lines() {
    if let Some(counter) = DROPPED_LOG_LINES.get() {
        metrics::counter!("tokengate_log_lines_dropped_total")
            .absolute(counter.dropped_lines() as u64);
    }
}

/// Colours only for a person at a terminal who has not asked for none
/// (<https://no-color.org>).
fn use_colours() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("tokengate: flushing traces failed: {e}");
        }
    }
}

/// Installs the global subscriber: `format` the shape of a line, `level` a
/// tracing filter (RUST_LOG wins), `writer` where lines are written from,
/// `telemetry` the optional OTLP export.
pub fn init(
    format: LogFormat,
    level: &str,
    writer: LogWriter,
    telemetry: Option<&TelemetryConfig>,
) -> anyhow::Result<TelemetryGuard> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    // tokio-postgres logs every statement's parameters at debug (password
    // hashes among them, for the directory commands): never below info.
    // ldap3 likewise logs protocol messages (a bind carries its password).
    let filter = ["tokio_postgres=info", "ldap3=info"]
        .into_iter()
        .filter_map(|d| d.parse().ok())
        .fold(filter, |filter, directive| filter.add_directive(directive));
    let (make_writer, log_writer) = match writer {
        LogWriter::Background => {
            let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
                .buffered_lines_limit(LOG_QUEUE_LINES)
                .lossy(true)
                .thread_name("tokengate-log")
                .finish(std::io::stderr());
            let _ = DROPPED_LOG_LINES.set(writer.error_counter());
            (BoxMakeWriter::new(writer), Some(guard))
        }
        LogWriter::Direct => (BoxMakeWriter::new(std::io::stderr), None),
    };
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(make_writer)
        .with_ansi(use_colours());
    let fmt = match format {
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    let (otel, provider) = match telemetry.and_then(|t| t.otlp_endpoint.as_deref().map(|e| (t, e)))
    {
        Some((config, endpoint)) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(endpoint)
                .build()
                .context("building the OTLP exporter")?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
                    config.sample_ratio,
                ))))
                .with_resource(
                    opentelemetry_sdk::Resource::builder()
                        .with_service_name(config.service_name.clone())
                        .build(),
                )
                .build();
            let tracer = provider.tracer("tokengate");
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            (
                Some(tracing_opentelemetry::layer().with_tracer(tracer)),
                Some(provider),
            )
        }
        None => (None, None),
    };
    // A second init (tests embedding the server) keeps the first subscriber.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(fmt)
        .with(otel)
        .try_init();
    Ok(TelemetryGuard {
        provider,
        _log_writer: log_writer,
    })
}

/// The process-wide Prometheus recorder (installed once).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // Histograms (not summaries), so replicas aggregate with
            // histogram_quantile(); buckets from 0.5 ms to 10 s.
            let buckets = [
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0,
            ];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), &buckets)
                .unwrap_or_else(|_| PrometheusBuilder::new());
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            // Another recorder may exist (tests embedding us); then ours only renders.
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// The server span of one call, a child of the caller's W3C `traceparent`
/// when it sends one (on every protocol: it is an HTTP header).
pub fn call_span(
    headers: &http::HeaderMap,
    protocol: &'static str,
    method: &'static str,
) -> tracing::Span {
    // domain_id and user_id are recorded by the core once it knows them, so
    // the access line (logged inside this span) carries them.
    let span = tracing::info_span!(
        "call",
        otel.kind = "server",
        rpc.system = protocol,
        rpc.method = method,
        domain_id = tracing::field::Empty,
        user_id = tracing::field::Empty,
    );
    if headers.contains_key("traceparent") {
        let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
        let _ = span.set_parent(parent);
    }
    span
}
