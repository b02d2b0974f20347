//! Server ingest under load: N simulated hosts upload chunk batches at once; reports chunks/s,
//! MiB/s and request latency, beside a baseline measured in the same run (the same request bodies
//! POSTed by the same N threads to a trivial loopback HTTP sink that only reads them).
//!
//! ```sh
//! cargo build --release -p segura-server --bin segura-server --example ingest_load
//! target/release/examples/ingest_load --url http://127.0.0.1:PORT --data DIR \
//!     --hosts 200 --batches 20 --chunks-per-batch 8 --chunk-bytes 49152
//! ```
//!
//! `--data` is the running server's data directory: enrollment tokens are minted with
//! `segura-server admin enroll-token --data DIR` (the binary next to `examples/`, or
//! `--server-bin`). Enrollment is rate-limited per client address (5/s, bursts of 20), so
//! enrolling 200 hosts takes about 40 s; it is setup, not measured. `bench/ingest.sh` runs it all.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use clap::Parser;
use libsegura::chunk::{ChunkEncoder, Record, Stream};
use libsegura::spool::RecordingRow;
use libsegura::wire::{
    Acks, ChunkBatch, EnrollResponse, WireChunk, CHUNKS_CONTENT_TYPE, MAX_BATCH_CHUNKS,
    MAX_BODY_BYTES,
};
use uuid::Uuid;

#[derive(Parser, Debug)]
#[command(about = "Load test of segura-server's chunk ingest against a loopback HTTP baseline")]
struct Args {
    /// The running server, e.g. http://127.0.0.1:8080.
    #[arg(long)]
    url: String,
    /// The server's data directory (to mint enrollment tokens).
    #[arg(long)]
    data: PathBuf,
    /// Simulated hosts, each a thread with its own connection.
    #[arg(long, default_value_t = 200)]
    hosts: usize,
    /// Chunk batches each host sends.
    #[arg(long, default_value_t = 20)]
    batches: usize,
    /// Chunks in each batch.
    #[arg(long, default_value_t = 8)]
    chunks_per_batch: usize,
    /// Bytes of (incompressible) payload in each chunk.
    #[arg(long, default_value_t = 49152)]
    chunk_bytes: usize,
    /// The segura-server binary (default: ../segura-server relative to this example).
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Skip the loopback HTTP baseline.
    #[arg(long)]
    no_baseline: bool,
}

/// One simulated host: its credential, its recording and its request bodies, made beforehand.
struct HostLoad {
    bearer: String,
    row: RecordingRow,
    /// Encoded `ChunkBatch`es, in order.
    bodies: Vec<Vec<u8>>,
}

/// Where a phase sends the bodies.
#[derive(Clone)]
enum Target {
    Segura { base: String },
    Sink { url: String },
}

/// What one host thread saw in one phase.
#[derive(Default)]
struct HostResult {
    latencies: Vec<Duration>,
    chunks: u64,
    bytes: u64,
    failures: u64,
    too_many: u64,
    busy: u64,
    errors: Vec<String>,
}

struct Phase {
    wall: Duration,
    latencies: Vec<Duration>,
    chunks: u64,
    bytes: u64,
    failures: u64,
    too_many: u64,
    busy: u64,
    errors: Vec<String>,
}

impl Phase {
    fn chunks_per_s(&self) -> f64 {
        self.chunks as f64 / self.wall.as_secs_f64()
    }
    fn mib_per_s(&self) -> f64 {
        self.bytes as f64 / 1048576.0 / self.wall.as_secs_f64()
    }
    fn pct_ms(&self, q: f64) -> f64 {
        if self.latencies.is_empty() {
            return f64::NAN;
        }
        // Nearest rank.
        let rank =
            ((q * self.latencies.len() as f64).ceil() as usize).clamp(1, self.latencies.len());
        self.latencies[rank - 1].as_secs_f64() * 1000.0
    }
    fn line(&self) -> String {
        format!(
            "{} chunks in {:.2} s: {:.0} chunks/s, {:.1} MiB/s; request latency p50 {:.1} ms, \
             p99 {:.1} ms, max {:.1} ms ({} requests); failures {} (429: {}, 503: {})",
            self.chunks,
            self.wall.as_secs_f64(),
            self.chunks_per_s(),
            self.mib_per_s(),
            self.pct_ms(0.50),
            self.pct_ms(0.99),
            self.pct_ms(1.0),
            self.latencies.len(),
            self.failures,
            self.too_many,
            self.busy
        )
    }
}

/// One host's encoded batch bodies.
type HostBodies = Vec<Vec<u8>>;
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(300)))
        .build()
        .into()
}

/// splitmix64: fast, good enough to defeat zstd.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next().to_le_bytes());
        }
        v.truncate(n);
        v
    }
}

/// The encoded batches of one host's recording: `batches` × `per_batch` output chunks of
/// `chunk_bytes` random bytes (in 4 KiB records, as a pty delivers them), level 1.
fn make_bodies(id: Uuid, seed: u64, a: &Args) -> Result<Vec<Vec<u8>>> {
    let mut rng = Rng(seed);
    let mut enc = ChunkEncoder::new(id, Stream::Output, 1);
    let mut t = 0u64;
    let mut bodies = Vec::with_capacity(a.batches);
    for _ in 0..a.batches {
        let mut chunks = Vec::with_capacity(a.chunks_per_batch);
        for _ in 0..a.chunks_per_batch {
            let data = rng.bytes(a.chunk_bytes);
            let records: Vec<Record> = data
                .chunks(4096)
                .map(|d| Record {
                    delay_us: 1000,
                    data: d.to_vec(),
                })
                .collect();
            let c = enc.seal(t, records).context("sealing a chunk")?;
            t = c.last_us + 1000;
            chunks.push(WireChunk::from_sealed(&c));
        }
        let body = ChunkBatch { chunks }.encode();
        ensure!(
            body.len() <= MAX_BODY_BYTES,
            "a batch is {} bytes, over the server's {MAX_BODY_BYTES}",
            body.len()
        );
        bodies.push(body);
    }
    Ok(bodies)
}

/// A one-time enrollment token from `segura-server admin enroll-token`.
fn mint_token(bin: &PathBuf, data: &PathBuf) -> Result<String> {
    let out = Command::new(bin)
        .args(["admin", "enroll-token", "--data"])
        .arg(data)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .with_context(|| format!("running {}", bin.display()))?;
    ensure!(
        out.status.success(),
        "admin enroll-token: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    let token = String::from_utf8(out.stdout)?
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string();
    ensure!(!token.is_empty(), "admin enroll-token printed no token");
    Ok(token)
}

/// Enrolls one host; waits out the per-address enrollment limit (429).
fn enroll(agent: &ureq::Agent, base: &str, token: &str, hostname: &str) -> Result<String> {
    let body = serde_json::json!({ "token": token, "hostname": hostname }).to_string();
    loop {
        let mut r = agent
            .post(format!("{base}/api/v1/enroll"))
            .header("Content-Type", "application/json")
            .send(body.as_bytes())
            .context("POST /api/v1/enroll")?;
        let status = r.status().as_u16();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        match status {
            201 => {
                let e: EnrollResponse = serde_json::from_str(&text).context("enroll answer")?;
                return Ok(format!("Bearer {}.{}", e.host_id, e.secret));
            }
            429 => thread::sleep(Duration::from_millis(200)),
            s => bail!("enrollment of {hostname}: {s} {text}"),
        }
    }
}

/// The trivial sink: thread per connection, HTTP/1.1 keep-alive, reads each body (by
/// Content-Length or chunked) and answers 200 with a small JSON body, like the acks.
fn start_sink() -> Result<SocketAddr> {
    let l = TcpListener::bind("127.0.0.1:0").context("binding the sink")?;
    let addr = l.local_addr()?;
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            thread::spawn(move || {
                let _ = serve_sink(s);
            });
        }
    });
    Ok(addr)
}

fn serve_sink(s: TcpStream) -> std::io::Result<()> {
    const ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 70\r\n\r\n{\"recording\":\"00000000-0000-0000-0000-000000000000\",\"streams\":{\"0\":8}}";
    let _ = s.set_nodelay(true);
    let mut r = BufReader::with_capacity(256 << 10, s.try_clone()?);
    let mut w = s;
    let mut line = String::new();
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let (mut len, mut chunked) = (0u64, false);
        loop {
            line.clear();
            if r.read_line(&mut line)? == 0 {
                return Err(bad("eof in headers"));
            }
            let t = line.trim_end();
            if t.is_empty() {
                break;
            }
            if let Some((k, v)) = t.split_once(':') {
                if k.eq_ignore_ascii_case("content-length") {
                    len = v.trim().parse().map_err(|_| bad("content-length"))?;
                } else if k.eq_ignore_ascii_case("transfer-encoding")
                    && v.to_ascii_lowercase().contains("chunked")
                {
                    chunked = true;
                }
            }
        }
        if chunked {
            loop {
                line.clear();
                r.read_line(&mut line)?;
                let size = u64::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .map_err(|_| bad("chunk size"))?;
                std::io::copy(&mut (&mut r).take(size), &mut std::io::sink())?;
                line.clear();
                r.read_line(&mut line)?;
                if size == 0 {
                    break;
                }
            }
        } else {
            let n = std::io::copy(&mut (&mut r).take(len), &mut std::io::sink())?;
            if n < len {
                return Err(bad("eof in body"));
            }
        }
        w.write_all(ANSWER)?;
    }
}

/// Before the clock starts: the PUT of the recording (segura), or a small POST (sink); both
/// open the thread's connection.
fn warm_up(agent: &ureq::Agent, target: &Target, host: &HostLoad) -> Result<()> {
    match target {
        Target::Segura { base } => {
            let id = host.row.meta.id;
            let mut r = agent
                .put(format!("{base}/api/v1/recordings/{id}"))
                .header("Authorization", &host.bearer)
                .header("Content-Type", "application/json")
                .send(serde_json::to_vec(&host.row)?.as_slice())
                .context("PUT recording")?;
            let status = r.status().as_u16();
            let text = r.body_mut().read_to_string().unwrap_or_default();
            ensure!(status == 201, "PUT recording {id}: {status} {text}");
        }
        Target::Sink { url } => {
            let mut r = agent
                .post(url)
                .send(&b"hello"[..])
                .context("POST to the sink")?;
            let _ = r.body_mut().read_to_vec();
            ensure!(r.status().as_u16() == 200, "sink: {}", r.status());
        }
    }
    Ok(())
}

/// Sends one host's batches; checks each answer.
fn run_host(agent: &ureq::Agent, target: &Target, host: &HostLoad, per_batch: usize) -> HostResult {
    let mut res = HostResult {
        latencies: Vec::with_capacity(host.bodies.len()),
        ..HostResult::default()
    };
    let id = host.row.meta.id;
    let url = match target {
        Target::Segura { base } => format!("{base}/api/v1/recordings/{id}/chunks"),
        Target::Sink { url } => url.clone(),
    };
    let mut b = 0;
    let mut retries = 0;
    while b < host.bodies.len() {
        let body = &host.bodies[b];
        let mut req = agent.post(&url).header("Content-Type", CHUNKS_CONTENT_TYPE);
        if matches!(target, Target::Segura { .. }) {
            req = req.header("Authorization", &host.bearer);
        }
        let t0 = Instant::now();
        let answer = req
            .send(body.as_slice())
            .and_then(|mut r| Ok((r.status().as_u16(), r.body_mut().read_to_vec()?)));
        res.latencies.push(t0.elapsed());
        let fail = |res: &mut HostResult, why: String| {
            res.failures += 1;
            res.errors.push(format!("host {id} batch {b}: {why}"));
        };
        let (status, text) = match answer {
            Ok(a) => a,
            Err(e) => {
                fail(&mut res, format!("transport error: {e}"));
                return res;
            }
        };
        if status == 429 || status == 503 {
            if status == 429 {
                res.too_many += 1;
            } else {
                res.busy += 1;
            }
            retries += 1;
            if retries > 50 {
                fail(
                    &mut res,
                    format!("{status} fifty times in a row; giving up"),
                );
                return res;
            }
            thread::sleep(Duration::from_millis(100));
            continue;
        }
        if status != 200 {
            fail(
                &mut res,
                format!("status {status}: {}", String::from_utf8_lossy(&text)),
            );
            return res;
        }
        if matches!(target, Target::Segura { .. }) {
            let want = ((b + 1) * per_batch) as u64;
            match serde_json::from_slice::<Acks>(&text) {
                Ok(acks)
                    if acks.recording == id
                        && acks.streams.len() == 1
                        && acks.streams.get(&(Stream::Output as u8)) == Some(&want) => {}
                Ok(acks) => {
                    fail(&mut res, format!("acks {acks:?}, want {want} of stream 0"));
                    return res;
                }
                Err(e) => {
                    fail(
                        &mut res,
                        format!("undecodable acks ({e}): {}", String::from_utf8_lossy(&text)),
                    );
                    return res;
                }
            }
        }
        res.chunks += per_batch as u64;
        res.bytes += body.len() as u64;
        retries = 0;
        b += 1;
    }
    res
}

/// All hosts at once: each thread warms up, waits for the others, then sends its batches.
fn run_phase(hosts: &[Arc<HostLoad>], target: &Target, per_batch: usize) -> Result<Phase> {
    let n = hosts.len();
    let ready = Arc::new(Barrier::new(n + 1));
    let go = Arc::new(Barrier::new(n + 1));
    let warm_errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let threads: Vec<_> = hosts
        .iter()
        .map(|h| {
            let (h, target) = (h.clone(), target.clone());
            let (ready, go, warm_errors) = (ready.clone(), go.clone(), warm_errors.clone());
            thread::Builder::new()
                .stack_size(1 << 20)
                .spawn(move || {
                    let agent = agent();
                    let warm = warm_up(&agent, &target, &h);
                    if let Err(e) = &warm {
                        warm_errors
                            .lock()
                            .unwrap()
                            .push(format!("host {}: {e:#}", h.row.meta.id));
                    }
                    ready.wait();
                    go.wait();
                    if warm.is_err() {
                        return HostResult::default();
                    }
                    run_host(&agent, &target, &h, per_batch)
                })
                .context("spawning a host thread")
        })
        .collect::<Result<_>>()?;
    ready.wait();
    let warm_errors = std::mem::take(&mut *warm_errors.lock().unwrap());
    let t0 = Instant::now();
    go.wait();
    let mut phase = Phase {
        wall: Duration::ZERO,
        latencies: Vec::new(),
        chunks: 0,
        bytes: 0,
        failures: warm_errors.len() as u64,
        too_many: 0,
        busy: 0,
        errors: warm_errors,
    };
    for t in threads {
        let r = t
            .join()
            .map_err(|_| anyhow::anyhow!("a host thread panicked"))?;
        phase.latencies.extend(r.latencies);
        phase.chunks += r.chunks;
        phase.bytes += r.bytes;
        phase.failures += r.failures;
        phase.too_many += r.too_many;
        phase.busy += r.busy;
        phase.errors.extend(r.errors);
    }
    phase.wall = t0.elapsed();
    phase.latencies.sort();
    Ok(phase)
}

fn main() -> Result<()> {
    let a = Args::parse();
    ensure!(
        a.hosts > 0 && a.batches > 0,
        "--hosts and --batches must be positive"
    );
    ensure!(
        (1..=MAX_BATCH_CHUNKS).contains(&a.chunks_per_batch),
        "--chunks-per-batch must be 1..={MAX_BATCH_CHUNKS}"
    );
    ensure!(a.chunk_bytes > 0, "--chunk-bytes must be positive");
    let base = a.url.trim_end_matches('/').to_string();
    let bin = match &a.server_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?
            .parent()
            .and_then(|d| d.parent())
            .context("no directory above this executable")?
            .join("segura-server"),
    };
    ensure!(
        bin.exists(),
        "{} not found (give --server-bin)",
        bin.display()
    );
    let a = Arc::new(a);

    // The data, made in the background (one worker per core) while the hosts enroll.
    let prep0 = Instant::now();
    let ids: Arc<Vec<Uuid>> = Arc::new((0..a.hosts).map(|_| Uuid::now_v7()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let made: Arc<Mutex<Vec<Option<HostBodies>>>> = Arc::new(Mutex::new(vec![None; a.hosts]));
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    let workers: Vec<_> = (0..cores)
        .map(|_| {
            let (a, ids, next, made) = (a.clone(), ids.clone(), next.clone(), made.clone());
            thread::spawn(move || -> Result<Duration> {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= ids.len() {
                        return Ok(prep0.elapsed());
                    }
                    let bodies = make_bodies(ids[i], 0x5e6u64.wrapping_mul(i as u64 + 1), &a)?;
                    made.lock().unwrap()[i] = Some(bodies);
                }
            })
        })
        .collect();

    let enroll0 = Instant::now();
    let enroll_agent = agent();
    let mut bearers = Vec::with_capacity(a.hosts);
    for i in 0..a.hosts {
        let token = mint_token(&bin, &a.data)?;
        bearers.push(enroll(
            &enroll_agent,
            &base,
            &token,
            &format!("loadhost-{i}"),
        )?);
    }
    let enroll_s = enroll0.elapsed().as_secs_f64();
    let mut prep = Duration::ZERO;
    for w in workers {
        prep = prep.max(
            w.join()
                .map_err(|_| anyhow::anyhow!("a data worker panicked"))??,
        );
    }
    let made = std::mem::take(&mut *made.lock().unwrap());
    let hosts: Vec<Arc<HostLoad>> = made
        .into_iter()
        .zip(bearers)
        .enumerate()
        .map(|(i, (bodies, bearer))| {
            Arc::new(HostLoad {
                bearer,
                row: segura_server::fixtures::recording_row(ids[i], &format!("loadhost-{i}")),
                bodies: bodies.expect("every host's data was made"),
            })
        })
        .collect();
    let total_chunks = (a.hosts * a.batches * a.chunks_per_batch) as u64;
    let total_bytes: u64 = hosts
        .iter()
        .flat_map(|h| h.bodies.iter())
        .map(|b| b.len() as u64)
        .sum();

    println!(
        "segura-server ingest: {} hosts at once, each 1 recording of {} batches x {} chunks of \
         {} bytes of incompressible output (zstd level 1)",
        a.hosts, a.batches, a.chunks_per_batch, a.chunk_bytes
    );
    println!(
        "total: {} chunks in {} requests, {:.1} MiB of request bodies",
        total_chunks,
        a.hosts * a.batches,
        total_bytes as f64 / 1048576.0
    );
    println!(
        "setup (not measured): {} hosts enrolled in {:.1} s (enrollment is limited to 5/s per \
         client address), data made in {:.1} s",
        a.hosts,
        enroll_s,
        prep.as_secs_f64()
    );

    // Baseline first: the server's writes (WAL, checkpoints, page-cache writeback) then cannot
    // slow it down.
    let baseline = if a.no_baseline {
        None
    } else {
        let sink = start_sink()?;
        Some(run_phase(
            &hosts,
            &Target::Sink {
                url: format!("http://{sink}/sink"),
            },
            a.chunks_per_batch,
        )?)
    };
    let segura = run_phase(
        &hosts,
        &Target::Segura { base: base.clone() },
        a.chunks_per_batch,
    )?;

    println!("segura-server: {}", segura.line());
    if segura.chunks != total_chunks {
        println!(
            "  only {} of {} chunks were acknowledged",
            segura.chunks, total_chunks
        );
    }
    if segura.too_many > 0 {
        println!(
            "  {} answers were 429 (the per-host rate limit; raise serve --rate/--burst)",
            segura.too_many
        );
    }
    for e in segura.errors.iter().take(5) {
        println!("  error: {e}");
    }
    if let Some(b) = &baseline {
        println!(
            "baseline (the same bodies, same {} threads, POSTed to a loopback HTTP sink that only \
             reads them): {}",
            a.hosts,
            b.line()
        );
        for e in b.errors.iter().take(5) {
            println!("  error: {e}");
        }
        println!(
            "ratio: segura-server ingests at {:.2}x the raw loopback HTTP rate \
             ({:.0} vs {:.0} chunks/s); p99 latency {:.1} ms vs {:.1} ms",
            segura.chunks_per_s() / b.chunks_per_s(),
            segura.chunks_per_s(),
            b.chunks_per_s(),
            segura.pct_ms(0.99),
            b.pct_ms(0.99)
        );
    }
    if segura.failures > 0 || baseline.as_ref().is_some_and(|b| b.failures > 0) {
        std::process::exit(1);
    }
    Ok(())
}
