//! `tokengate-hostile`: hostile traffic against one loopback target (see
//! `tokengate_load::hostile` and README.md).

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use tokengate_load::hostile::{HalfOpen, HostileConfig, StreamAttack, run};

/// Attacks ONE loopback target with garbage, half-open connections,
/// oversized bodies, stream floods and a connection flood, and reports how
/// the server reacted (and its memory, with --server-pid). Zero attackers
/// of a kind turns it off.
#[derive(Debug, Parser)]
#[command(name = "tokengate-hostile", version)]
struct Cli {
    /// The service URL (http only). Must be on loopback (127.0.0.0/8, ::1).
    #[arg(long, value_name = "URL", default_value = "http://127.0.0.1:50051")]
    target: String,
    /// Seconds during which attacks are started.
    #[arg(long, short = 'd', value_name = "SECS", default_value_t = 10.0)]
    duration: f64,
    /// Seconds then left for open connections to be closed by the server.
    #[arg(long, value_name = "SECS", default_value_t = 5.0)]
    drain: f64,
    /// A garbage, oversized or stream attempt waits this long at most.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    attempt_timeout: f64,
    /// domain_id of the calls of the stream attacks.
    #[arg(long, value_name = "D", default_value = "domain-dev")]
    domain: String,
    /// Garbage attackers (one connection at a time each).
    #[arg(long, value_name = "N", default_value_t = 2)]
    garbage: usize,
    /// Half-open connections held at once.
    #[arg(long, value_name = "N", default_value_t = 200)]
    half_open: usize,
    /// What half-open connections send before stalling (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = HalfOpen::ALL.to_vec())]
    half_open_kinds: Vec<HalfOpen>,
    /// Oversized-body attackers.
    #[arg(long, value_name = "N", default_value_t = 2)]
    oversized: usize,
    /// Size of the oversized REST bodies, bytes.
    #[arg(long, value_name = "BYTES", default_value_t = 2 << 20)]
    oversized_bytes: usize,
    /// Stream attackers (one HTTP/2 connection at a time each).
    #[arg(long, value_name = "N", default_value_t = 1)]
    streams: usize,
    /// Streams opened at once per connection by the stream attacks.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    streams_per_connection: usize,
    /// What the stream attackers do, in turn (comma-separated;
    /// hyper-concurrent makes valid calls, i.e. adds load).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = StreamAttack::ALL.to_vec())]
    stream_kinds: Vec<StreamAttack>,
    /// Streams opened and cancelled per rapid-reset connection, at most.
    #[arg(long, value_name = "N", default_value_t = 20_000)]
    rapid_reset_streams: usize,
    /// TCP connections of the flood, opened at once and held.
    #[arg(long, value_name = "N", default_value_t = 1000)]
    connections: usize,
    /// Connect from this local address (e.g. 127.0.0.2: the server then
    /// tells the attacker from honest clients on 127.0.0.1).
    #[arg(long, value_name = "IP")]
    source: Option<std::net::IpAddr>,
    /// The server's PID: sample its VmRSS / VmHWM every 500 ms.
    #[arg(long, value_name = "PID")]
    server_pid: Option<u32>,
    /// Seed of the random garbage.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Worker threads (default: the CPUs the process may run on).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

fn secs(name: &str, v: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(v)
        .map_err(|_| anyhow::anyhow!("--{name} must be a number of seconds >= 0"))
}

fn config(cli: &Cli) -> anyhow::Result<HostileConfig> {
    Ok(HostileConfig {
        target: cli.target.clone(),
        duration: secs("duration", cli.duration)?,
        drain: secs("drain", cli.drain)?,
        attempt_timeout: secs("attempt-timeout", cli.attempt_timeout)?,
        domain: cli.domain.clone(),
        garbage: cli.garbage,
        half_open: cli.half_open,
        half_open_kinds: cli.half_open_kinds.clone(),
        oversized: cli.oversized,
        oversized_bytes: cli.oversized_bytes,
        streams: cli.streams,
        streams_per_connection: cli.streams_per_connection,
        stream_kinds: cli.stream_kinds.clone(),
        rapid_reset_streams: cli.rapid_reset_streams,
        connections: cli.connections,
        source: cli.source,
        server_pid: cli.server_pid,
        seed: cli.seed,
    })
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run_cli(&cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tokengate-hostile: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run_cli(cli: &Cli) -> anyhow::Result<()> {
    let cfg = config(cli)?;
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder.enable_all();
    if cli.threads > 0 {
        builder.worker_threads(cli.threads);
    }
    let report = builder.build()?.block_on(run(&cfg))?;
    if cli.json {
        println!("{}", report.to_json());
    } else {
        print!("{report}");
    }
    Ok(())
}
