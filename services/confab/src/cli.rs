//! Command-line interface: `serve`, `admin …`, `token mint`, `bench …`.
//! Every command that prints data accepts `--json`. In embedded mode the
//! admin commands work directly on the data directory, also while the server
//! runs (SQLite in WAL mode lets both in).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use confab_control::model::Status;
use confab_control::service::{Actor, Control};
use confab_model::{AppId, KickPolicy, UserId};
use serde_json::json;

use crate::settings::{LogFormat, ServeSettings, StoreKind};
use crate::startup;

#[derive(Debug, Parser)]
#[command(
    name = "confab",
    version,
    about = "Confab: multi-tenant instant messaging"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run everything in one process (embedded: SQLite, no other server).
    Serve(ServeSettings),
    /// Run a gateway node: connections only; logic over gRPC (CONFAB_LOGIC_ADDRS).
    Gateway(ServeSettings),
    /// Run a logic node: the logic layer over gRPC on PostgreSQL + Redis.
    Logic(ServeSettings),
    /// Run the control plane: admin REST API and the config stream to
    /// data-plane nodes (gRPC), on SQLite or PostgreSQL.
    Control(ServeSettings),
    /// Run push workers: drain the offline-push queue (PostgreSQL) through
    /// the providers, with the apps' credentials (needs CONFAB_KEK).
    Push(ServeSettings),
    /// Manage tenants, apps and keys.
    Admin(AdminArgs),
    /// User tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Load generator.
    Bench(BenchArgs),
}

#[derive(Debug, Clone, Args)]
pub struct DataDir {
    /// Embedded data directory.
    #[arg(
        long,
        env = "CONFAB_DATA_DIR",
        default_value = "./confab-data",
        global = true
    )]
    pub data_dir: PathBuf,
    /// Print JSON instead of text.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AdminArgs {
    #[command(flatten)]
    pub data: DataDir,
    #[command(subcommand)]
    pub command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    Tenant {
        #[command(subcommand)]
        command: TenantCommand,
    },
    App {
        #[command(subcommand)]
        command: AppCommand,
    },
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Key-encryption keys (CONFAB_KEK).
    Kek {
        #[command(subcommand)]
        command: KekCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum KekCommand {
    /// Print a new random KEK (`id:base64`), to put first in CONFAB_KEK.
    Generate,
    /// Re-seal every app secret with the current (first) KEK.
    Rewrap,
}

#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Create a tenant.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List tenants.
    List,
    /// Suspend a tenant: its apps refuse logins and live sessions are kicked.
    Suspend {
        #[arg(long)]
        tenant: String,
    },
    /// Resume a suspended tenant.
    Resume {
        #[arg(long)]
        tenant: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AppCommand {
    /// Create an app (prints its id, first key id and secret, once).
    Create {
        /// Tenant id or name.
        #[arg(long)]
        tenant: String,
        #[arg(long, default_value = "app")]
        name: String,
    },
    /// List apps, of one tenant or all.
    List {
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Change an app's settings.
    Set {
        #[arg(long)]
        app: String,
        /// one_per_platform, one_in_all or unlimited.
        #[arg(long)]
        kick_policy: Option<String>,
        #[arg(long)]
        recall_window_secs: Option<i64>,
        #[arg(long)]
        max_body_bytes: Option<usize>,
        /// Groups with more members use read diffusion (docs/protocol.md §4.15).
        #[arg(long)]
        read_diffusion_threshold: Option<u32>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Add a key to an app (prints the secret once).
    Create {
        #[arg(long)]
        app: String,
    },
    /// Rotate: add a new key; revoke the old one once clients use the new one.
    Rotate {
        #[arg(long)]
        app: String,
    },
    /// Revoke a key: tokens it signed stop working.
    Revoke {
        #[arg(long)]
        key: String,
    },
    /// List an app's keys (never the secrets).
    List {
        #[arg(long)]
        app: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Mint a user token with the app's newest key.
    Mint {
        #[command(flatten)]
        data: DataDir,
        #[arg(long)]
        app: String,
        #[arg(long)]
        user: String,
        /// Lifetime in seconds (at most 30 days).
        #[arg(long, default_value_t = 86_400)]
        ttl: i64,
    },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// Scenario: p2p (user pairs sending 1:1 messages), sync (catch up
    /// after missing --messages while offline), room (--members in one
    /// live room, one sender at --rate), group (--members in one group, all
    /// online, --senders of them sending at --rate or saturating), idle (hold --connections and
    /// report the server's RSS and fds per connection) or login-storm
    /// (--connections distinct logins, --concurrency at a time), mixed
    /// (1:1, group, sync, read and login traffic over --apps apps at --rate,
    /// or at each rate of --sweep); for distributed runs
    /// (scripts/bench-cluster) also setup (lift the app's quotas once and
    /// wait for every --gateways) and merge (add up the result FILES of the
    /// processes of one run: room parts or idle results).
    #[arg(default_value = "p2p")]
    pub scenario: String,
    /// Server HTTP address (WebSocket and /metrics).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: String,
    /// App to use; default: the first app in the data directory.
    #[arg(long)]
    pub app: Option<String>,
    /// Number of sender→receiver pairs (2 connections each).
    #[arg(long, default_value_t = 100)]
    pub pairs: usize,
    /// Messages per second offered in total; 0 = as fast as acknowledged.
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Seconds of sending after all logins.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Messages each sender may have unacknowledged at once (saturation runs).
    #[arg(long, default_value_t = 1)]
    pub window: usize,
    /// Local source addresses to spread connections over (127.0.0.x).
    #[arg(long, default_value_t = 1)]
    pub source_ips: u8,
    /// How the load generator connects: ws-json, ws-proto or tcp.
    #[arg(long, default_value = "ws-json")]
    pub transport: String,
    /// Server TCP address (for --transport tcp).
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub tcp: String,
    /// Messages missed while offline (sync scenario).
    #[arg(long, default_value_t = 10_000)]
    pub messages: usize,
    /// Write the JSON result here too.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Leave the app's message-rate and connection quotas as they are (by
    /// default the benchmark lifts them: api.md's defaults, e.g. 1 000
    /// messages per second per app, would measure the quota, not the server).
    #[arg(long)]
    pub keep_quotas: bool,
    /// Members online in the room (room scenario; default 1000) or the
    /// group (group scenario; default 500).
    #[arg(long)]
    pub members: Option<usize>,
    /// Members of the group that send (group scenario).
    #[arg(long, default_value_t = 4)]
    pub senders: usize,
    /// group: under read diffusion, the least milliseconds between two
    /// pulls of the group by one receiver; notices in between are folded
    /// into the next pull, as an SDK debounces them (0: pull at once).
    #[arg(long, default_value_t = 0)]
    pub notice_pull_ms: u64,
    /// Priority of the room messages: high, normal or low (room scenario).
    #[arg(long, default_value = "high")]
    pub priority: String,
    /// Connections to hold (idle) or logins to make (login-storm).
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Logins in flight at once (idle, login-storm).
    #[arg(long, default_value_t = 256)]
    pub concurrency: usize,
    /// The server's pid, for RSS and fds from /proc (idle; same machine).
    /// Without it, RSS comes from /metrics and fds are not reported.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Seconds `idle` holds the connections before measuring.
    #[arg(long, default_value_t = 3)]
    pub hold: u64,
    /// mixed: apps to spread the traffic over (`bench-mixed-N` under the
    /// tenant `bench`, created when missing).
    #[arg(long, default_value_t = 10)]
    pub apps: usize,
    /// mixed: users online per app.
    #[arg(long, default_value_t = 20)]
    pub users: usize,
    /// mixed: members of each app's group.
    #[arg(long, default_value_t = 10)]
    pub group_size: usize,
    /// mixed: offered rates (ops/s) to run one after another, e.g.
    /// 500,1000,2000; one result file each in --out-dir.
    #[arg(long, value_delimiter = ',')]
    pub sweep: Vec<u64>,
    /// mixed --sweep: directory for the result files (mixed-<rate>.json,
    /// sweep.json).
    #[arg(long)]
    pub out_dir: Option<PathBuf>,
    /// mixed --sweep: write the p50/p99-against-load chart (SVG) here.
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// Distributed runs (scripts/bench-cluster): gateways to spread the
    /// clients over, client i on gateway i mod n (idle, login-storm, room
    /// with --room-id; setup waits for each to apply the lifted quotas).
    #[arg(long, value_delimiter = ',')]
    pub gateways: Vec<String>,
    /// First source address 127.0.0.N of this process's clients (with
    /// --source-ips: N ..= N + source-ips - 1), so that several processes
    /// use addresses of their own.
    #[arg(long, default_value_t = 1)]
    pub source_from: u8,
    /// Where REST calls go (room creation) when --http is a gateway without
    /// REST (split services: a logic node). Default: --http.
    #[arg(long)]
    pub rest: Option<String>,
    /// room: run one part of a distributed room: join (creating it when
    /// missing) this room with --members clients and write the raw counts
    /// for `confab bench merge`.
    #[arg(long)]
    pub room_id: Option<String>,
    /// room --room-id: this part also sends (--rate, --duration, --priority).
    #[arg(long)]
    pub send: bool,
    /// room --room-id: seconds to keep receiving after the sending time.
    #[arg(long, default_value_t = 5)]
    pub drain: u64,
    /// idle, room --room-id: written once every client is logged in (joined).
    #[arg(long)]
    pub ready_file: Option<PathBuf>,
    /// room --room-id: wait until this file holds the start time (Unix ms).
    #[arg(long)]
    pub start_file: Option<PathBuf>,
    /// Makes user ids unique per process (default: from the clock and pid).
    #[arg(long)]
    pub run_id: Option<String>,
    /// merge: the result files of one distributed run (room parts or idle).
    pub files: Vec<PathBuf>,
}

pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_http=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Pretty => builder.try_init(),
    };
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(settings) => serve(settings).await,
        Command::Gateway(settings) => {
            init_tracing(settings.log_format);
            startup::build_gateway(settings)
                .await?
                .run_until(shutdown_signal())
                .await
        }
        Command::Logic(settings) => {
            init_tracing(settings.log_format);
            let node = startup::build_logic(settings).await?;
            if let Some(first) = &node.first_run {
                print_first_run(first);
            }
            node.run_until(shutdown_signal()).await
        }
        Command::Control(settings) => {
            init_tracing(settings.log_format);
            let node = startup::build_control(settings).await?;
            if let Some(first) = &node.first_run {
                print_first_run(first);
            }
            node.run_until(shutdown_signal()).await
        }
        Command::Push(settings) => {
            init_tracing(settings.log_format);
            crate::push::run(settings, shutdown_signal()).await
        }
        Command::Admin(args) => admin_command(args).await,
        Command::Token {
            command:
                TokenCommand::Mint {
                    data,
                    app,
                    user,
                    ttl,
                },
        } => {
            let control = open(&data).await?;
            let app = parse_app(&app)?;
            let user = UserId::parse(&user).context("--user")?;
            let (key_id, secret) = control
                .signing_key(&Actor::System, app.as_str())
                .await
                .map_err(cli_error)?;
            let token = confab_logic::auth::mint(&key_id, &secret, &app, &user, ttl)?;
            if data.json {
                println!(
                    "{}",
                    json!({ "app_id": app.as_str(), "user_id": user.as_str(), "token": token, "ttl": ttl })
                );
            } else {
                println!("{token}");
            }
            Ok(())
        }
        Command::Bench(args) => bench(args).await,
    }
}

async fn serve(settings: ServeSettings) -> anyhow::Result<()> {
    init_tracing(settings.log_format);
    let app = startup::build(settings).await?;
    if let Some(first) = &app.first_run {
        print_first_run(first);
        println!(
            "  WebSocket:   ws://{}/v1/connect  (subprotocol confab.v1.json or confab.v1.proto)\
             \n  TCP:         {}  (4-byte length + protobuf Frame)\
             \n  admin API:   http://{}/admin/v1  (reference: http://{}/admin/docs/)\
             \n  metrics:     http://{}/metrics\n\
             \nMint a user token:  confab token mint --app {} --user alice\n",
            app.http_addr,
            app.tcp_addr,
            app.http_addr,
            app.http_addr,
            app.http_addr,
            first.app.app_id
        );
    }
    app.run_until(shutdown_signal()).await
}

fn print_first_run(first: &confab_control::service::Bootstrapped) {
    println!(
        "\nConfab first start: a `default` tenant and app, and an operator account, were created.\n\
         These secrets are shown only this once.\n\
         \n  app id:      {}\n  key id:      {}\n  secret key:  {}\
         \n  console:     user {} / password {}\n",
        first.app.app_id,
        first.app.key_id,
        first.app.secret,
        first.operator_username,
        first.operator_password
    );
}

fn cli_error(e: confab_control::ControlError) -> anyhow::Error {
    anyhow::anyhow!("{} ({})", e.message, e.code)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// The control plane the CLI works on: the data directory's database, or
/// with `CONFAB_STORE=distributed` the control records in `CONFAB_PG_URL`;
/// secrets sealed with `CONFAB_KEK` (embedded default: `<data dir>/kek`).
async fn open(data: &DataDir) -> anyhow::Result<Control> {
    let mut settings = ServeSettings::for_tests(data.data_dir.clone());
    settings.kek = std::env::var("CONFAB_KEK").ok();
    let store: Arc<dyn confab_store::ControlStore> =
        if std::env::var("CONFAB_STORE").is_ok_and(|s| s == "distributed") {
            settings.store = StoreKind::Distributed;
            let url = std::env::var("CONFAB_PG_URL").context("CONFAB_PG_URL is required")?;
            let pg = confab_store::postgres::PgStore::connect(&url, Default::default())
                .await
                .context("connecting to PostgreSQL")?;
            pg.into_stores().control
        } else {
            startup::open_stores(&settings).await?.control
        };
    Ok(Control::new(store, Arc::new(startup::keyring(&settings)?)))
}

fn parse_app(s: &str) -> anyhow::Result<AppId> {
    AppId::parse(s).map_err(|e| anyhow::anyhow!("--app: {e}"))
}

fn print(json_out: bool, value: serde_json::Value, text: String) {
    if json_out {
        println!("{value}");
    } else {
        println!("{text}");
    }
}

async fn admin_command(args: AdminArgs) -> anyhow::Result<()> {
    let control = open(&args.data).await?;
    let me = Actor::System;
    let j = args.data.json;
    match args.command {
        AdminCommand::Tenant {
            command: TenantCommand::Create { name },
        } => {
            let t = control.create_tenant(&me, &name).await.map_err(cli_error)?;
            print(
                j,
                json!({"tenant_id": t.tenant_id, "name": t.name}),
                format!("tenant {} ({})", t.tenant_id, t.name),
            );
        }
        AdminCommand::Tenant {
            command: TenantCommand::List,
        } => {
            let list = control.tenants(&me).await.map_err(cli_error)?;
            let text = list
                .iter()
                .map(|t| format!("{}\t{}\t{:?}\t{}", t.tenant_id, t.name, t.status, t.cell_id))
                .collect::<Vec<_>>()
                .join("\n");
            print(j, serde_json::to_value(&list)?, text);
        }
        AdminCommand::Tenant {
            command: TenantCommand::Suspend { tenant },
        } => set_tenant_status(&control, j, &tenant, Status::Suspended).await?,
        AdminCommand::Tenant {
            command: TenantCommand::Resume { tenant },
        } => set_tenant_status(&control, j, &tenant, Status::Active).await?,
        AdminCommand::App {
            command: AppCommand::Create { tenant, name },
        } => {
            let a = control
                .create_app(&me, &tenant, &name, None)
                .await
                .map_err(cli_error)?;
            let text = format!(
                "app id:     {}\nkey id:     {}\nsecret key: {}  (shown once)",
                a.app_id, a.key_id, a.secret
            );
            print(j, serde_json::to_value(&a)?, text);
        }
        AdminCommand::App {
            command: AppCommand::List { tenant },
        } => {
            let list = control
                .apps(&me, tenant.as_deref())
                .await
                .map_err(cli_error)?;
            let text = list
                .iter()
                .map(|a| format!("{}\t{}\t{}", a.app_id, a.tenant_id, a.name))
                .collect::<Vec<_>>()
                .join("\n");
            print(j, serde_json::to_value(&list)?, text);
        }
        AdminCommand::App {
            command:
                AppCommand::Set {
                    app,
                    kick_policy,
                    recall_window_secs,
                    max_body_bytes,
                    read_diffusion_threshold,
                },
        } => {
            let mut settings = control.app(&me, &app).await.map_err(cli_error)?.settings;
            if let Some(p) = kick_policy {
                settings.kick_policy = KickPolicy::parse(&p).with_context(|| {
                    format!("kick policy {p:?}: use one_per_platform, one_in_all or unlimited")
                })?;
            }
            if let Some(s) = recall_window_secs {
                anyhow::ensure!(s >= 0, "recall window must not be negative");
                settings.recall_window_ms = s * 1000;
            }
            if let Some(b) = max_body_bytes {
                settings.max_body_bytes = b;
            }
            if let Some(t) = read_diffusion_threshold {
                settings.read_diffusion_threshold = t;
            }
            let updated = control
                .update_app(&me, &app, None, Some(settings), None)
                .await
                .map_err(cli_error)?;
            print(
                j,
                json!({"app_id": updated.app_id, "settings": updated.settings}),
                format!("{}: {:?}", updated.app_id, updated.settings),
            );
        }
        AdminCommand::Key {
            command: KeyCommand::Create { app } | KeyCommand::Rotate { app },
        } => {
            let k = control.create_key(&me, &app).await.map_err(cli_error)?;
            let text = format!(
                "key id:     {}\nsecret key: {}  (shown once)",
                k.key_id, k.secret
            );
            print(j, serde_json::to_value(&k)?, text);
        }
        AdminCommand::Key {
            command: KeyCommand::Revoke { key },
        } => {
            control
                .revoke_key(&me, None, &key)
                .await
                .map_err(cli_error)?;
            print(
                j,
                json!({"key_id": key, "revoked": true}),
                format!("revoked {key}"),
            );
        }
        AdminCommand::Key {
            command: KeyCommand::List { app },
        } => {
            let keys = control.keys(&me, &app).await.map_err(cli_error)?;
            let text = keys
                .iter()
                .map(|k| {
                    format!(
                        "{}\t{}",
                        k.key_id,
                        if k.revoked_at.is_some() {
                            "revoked"
                        } else {
                            "active"
                        }
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            print(j, serde_json::to_value(&keys)?, text);
        }
        AdminCommand::Kek {
            command: KekCommand::Generate,
        } => {
            let spec = confab_control::keyring::Keyring::generate_spec();
            print(j, json!({ "kek": spec }), spec.clone());
        }
        AdminCommand::Kek {
            command: KekCommand::Rewrap,
        } => {
            let n = control.rewrap_keys(&me).await.map_err(cli_error)?;
            print(
                j,
                json!({ "rewrapped": n }),
                format!("re-sealed {n} secrets with the current KEK"),
            );
        }
    }
    Ok(())
}

/// Lifts the app's message-rate and connection quotas for a benchmark and
/// waits (up to 10 s) until the server at `http` has applied them.
async fn lift_quotas(control: &Control, app_id: &str, http: &str) -> anyhow::Result<()> {
    let me = Actor::System;
    let mut settings = control.app(&me, app_id).await.map_err(cli_error)?.settings;
    settings.quotas.app_messages_per_sec = 10_000_000;
    settings.quotas.user_messages_per_sec = 1_000_000;
    settings.quotas.max_connections = 10_000_000;
    // The group scenario's group may be larger than the default 500.
    settings.quotas.max_group_size = settings.quotas.max_group_size.max(100_000);
    control
        .update_app(&me, app_id, None, Some(settings), None)
        .await
        .map_err(cli_error)?;
    let want = control.version().await.map_err(cli_error)?;
    eprintln!(
        "lifted the message-rate and connection quotas of {app_id} for the benchmark (--keep-quotas to not)"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if confab_bench::config_version(http).await.unwrap_or(0) >= want {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    anyhow::bail!("the server at {http} did not apply the lifted quotas within 10 s")
}

async fn set_tenant_status(
    control: &Control,
    json_out: bool,
    tenant: &str,
    status: Status,
) -> anyhow::Result<()> {
    let t = control
        .set_tenant_status(&Actor::System, tenant, status)
        .await
        .map_err(cli_error)?;
    print(
        json_out,
        serde_json::to_value(&t)?,
        format!("tenant {} is {:?}", t.tenant_id, t.status),
    );
    Ok(())
}

async fn bench(args: BenchArgs) -> anyhow::Result<()> {
    if args.scenario == "merge" {
        let (value, human) = confab_bench::dist::merge_files(&args.files)?;
        return emit(&args, &value, &human);
    }
    let control = open(&args.data).await?;
    if args.scenario == "mixed" {
        return bench_mixed(&args, &control).await;
    }
    let app_id = match &args.app {
        Some(a) => parse_app(a)?,
        None => {
            let first = control
                .apps(&Actor::System, None)
                .await
                .map_err(cli_error)?
                .into_iter()
                .min_by_key(|a| a.created_at)
                .context("no app in the data directory")?;
            parse_app(&first.app_id)?
        }
    };
    if args.scenario == "setup" {
        // Lift the quotas once for every process of a distributed run and
        // wait until each gateway applied them.
        let waits = if args.gateways.is_empty() {
            vec![args.http.clone()]
        } else {
            args.gateways.clone()
        };
        for http in &waits {
            lift_quotas(&control, app_id.as_str(), http).await?;
        }
        println!("{}", app_id.as_str());
        return Ok(());
    }
    if !args.keep_quotas {
        lift_quotas(&control, app_id.as_str(), &args.http).await?;
    }
    let (key_id, secret) = control
        .signing_key(&Actor::System, app_id.as_str())
        .await
        .map_err(cli_error)?;
    let rest_secret = secret.clone();
    let mint: confab_bench::Mint = Arc::new(move |user: &str| {
        let user = UserId::parse(user).map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(confab_logic::auth::mint(
            &key_id, &secret, &app_id, &user, 3600,
        )?)
    });
    if args.scenario == "idle" || args.scenario == "login-storm" {
        return bench_connections(&args, mint).await;
    }
    if args.scenario == "sync" {
        let options = confab_bench::SyncOptions {
            http: args.http.clone(),
            messages: args.messages,
            senders: args.pairs.clamp(1, 100),
            run_id: format!("{:x}", confab_model::now_ms()),
        };
        let result = confab_bench::sync(options, mint).await?;
        let value = serde_json::to_value(&result)?;
        if let Some(path) = &args.out {
            std::fs::write(path, serde_json::to_string_pretty(&value)?)?;
        }
        if args.data.json {
            println!("{value}");
        } else {
            println!("{}", result.human());
        }
        return Ok(());
    }
    let transport = bench_transport(&args.transport)?;
    if args.scenario == "room"
        && let Some(room_id) = &args.room_id
    {
        let options = confab_bench::dist::RoomPartOptions {
            spread: spread(&args),
            rest: args.rest.clone().unwrap_or_else(|| args.http.clone()),
            secret: rest_secret,
            room_id: room_id.clone(),
            members: args.members.unwrap_or(1000),
            send: args.send,
            rate: if args.rate == 0 { 1 } else { args.rate },
            duration: std::time::Duration::from_secs(args.duration),
            priority: args.priority.clone(),
            drain: std::time::Duration::from_secs(args.drain),
            concurrency: args.concurrency,
            transport,
            ready_file: args.ready_file.clone(),
            start_file: args.start_file.clone(),
            run_id: run_id(&args),
        };
        let part = confab_bench::dist::room_part(options, mint).await?;
        let human = format!(
            "room part: {} members ({} failed), sent {}, delivered {}",
            part.members, part.join_failed, part.sent, part.delivered
        );
        return emit(&args, &serde_json::to_value(&part)?, &human);
    }
    if args.scenario == "room" {
        let options = confab_bench::RoomOptions {
            http: args.http.clone(),
            tcp: args.tcp.clone(),
            transport,
            members: args.members.unwrap_or(1000).max(1),
            rate: if args.rate == 0 { 10 } else { args.rate },
            duration: std::time::Duration::from_secs(args.duration),
            priority: args.priority.clone(),
            source_ips: args.source_ips.max(1),
            secret: rest_secret,
            run_id: format!("{:x}", confab_model::now_ms()),
        };
        let result = confab_bench::room(options, mint).await?;
        let value = serde_json::to_value(&result)?;
        if let Some(path) = &args.out {
            std::fs::write(path, serde_json::to_string_pretty(&value)?)?;
        }
        if args.data.json {
            println!("{value}");
        } else {
            println!("{}", result.human());
        }
        return Ok(());
    }
    if args.scenario == "group" {
        let options = confab_bench::GroupOptions {
            http: args.http.clone(),
            tcp: args.tcp.clone(),
            transport,
            members: args.members.unwrap_or(500).max(2),
            senders: args.senders.max(1),
            rate: args.rate,
            window: args.window.max(1),
            duration: std::time::Duration::from_secs(args.duration),
            source_ips: args.source_ips.max(1),
            run_id: format!("{:x}", confab_model::now_ms()),
            notice_pull_interval: std::time::Duration::from_millis(args.notice_pull_ms),
        };
        let result = confab_bench::group(options, mint).await?;
        let value = serde_json::to_value(&result)?;
        if let Some(path) = &args.out {
            std::fs::write(path, serde_json::to_string_pretty(&value)?)?;
        }
        if args.data.json {
            println!("{value}");
        } else {
            println!("{}", result.human());
        }
        return Ok(());
    }
    let options = confab_bench::P2pOptions {
        http: args.http.clone(),
        pairs: args.pairs,
        rate: args.rate,
        duration: std::time::Duration::from_secs(args.duration),
        window: args.window.max(1),
        source_ips: args.source_ips.max(1),
        run_id: format!("{:x}", confab_model::now_ms()),
        transport,
        tcp: args.tcp.clone(),
    };
    anyhow::ensure!(
        args.scenario == "p2p",
        "unknown scenario {:?}; available: p2p, sync, room, group, idle, login-storm, mixed, setup, merge",
        args.scenario
    );
    let result = confab_bench::p2p(options, mint).await?;
    let value = serde_json::to_value(&result)?;
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&value)?)?;
    }
    if args.data.json {
        println!("{value}");
    } else {
        println!("{}", result.human());
    }
    Ok(())
}

/// User ids must not collide between the processes of one distributed run.
fn run_id(args: &BenchArgs) -> String {
    args.run_id
        .clone()
        .unwrap_or_else(|| format!("{:x}p{}", confab_model::now_ms(), std::process::id()))
}

fn spread(args: &BenchArgs) -> confab_bench::dist::Spread {
    confab_bench::dist::Spread {
        gateways: if args.gateways.is_empty() {
            vec![args.http.clone()]
        } else {
            args.gateways.clone()
        },
        source_from: args.source_from,
        source_ips: args.source_ips.max(1),
    }
}

/// Prints a result (JSON or human) and writes it to --out.
fn emit(args: &BenchArgs, value: &serde_json::Value, human: &str) -> anyhow::Result<()> {
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(value)?)?;
    }
    if args.data.json {
        println!("{value}");
    } else {
        println!("{human}");
    }
    Ok(())
}

fn bench_transport(name: &str) -> anyhow::Result<confab_bench::BenchTransport> {
    Ok(match name {
        "ws-json" => confab_bench::BenchTransport::WsJson,
        "ws-proto" => confab_bench::BenchTransport::WsProto,
        "tcp" => confab_bench::BenchTransport::Tcp,
        other => anyhow::bail!("--transport {other:?}: use ws-json, ws-proto or tcp"),
    })
}

/// `confab bench idle` and `confab bench login-storm`.
async fn bench_connections(args: &BenchArgs, mint: confab_bench::Mint) -> anyhow::Result<()> {
    let options = confab_bench::connections::ConnOptions {
        http: args.http.clone(),
        transport: bench_transport(&args.transport)?,
        tcp: args.tcp.clone(),
        connections: args.connections,
        concurrency: args.concurrency,
        source_ips: args.source_ips.max(1),
        server_pid: args.server_pid,
        hold: std::time::Duration::from_secs(args.hold),
        run_id: run_id(args),
        gateways: args.gateways.clone(),
        source_from: args.source_from,
        ready_file: args.ready_file.clone(),
    };
    let (value, human) = if args.scenario == "idle" {
        let r = confab_bench::connections::idle(options, mint).await?;
        (serde_json::to_value(&r)?, r.human())
    } else {
        let r = confab_bench::connections::login_storm(options, mint).await?;
        (serde_json::to_value(&r)?, r.human())
    };
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_string_pretty(&value)?)?;
    }
    if args.data.json {
        println!("{value}");
    } else {
        println!("{human}");
    }
    Ok(())
}

/// `confab bench mixed`: the apps `bench-mixed-0..N` (created under the
/// tenant `bench` when missing, quotas lifted unless --keep-quotas), then
/// one run at --rate, or one per rate of --sweep with a result file each
/// and the latency chart.
async fn bench_mixed(args: &BenchArgs, control: &Control) -> anyhow::Result<()> {
    let me = Actor::System;
    let tenant = match control
        .tenants(&me)
        .await
        .map_err(cli_error)?
        .into_iter()
        .find(|t| t.name == "bench")
    {
        Some(t) => t,
        None => control
            .create_tenant(&me, "bench")
            .await
            .map_err(cli_error)?,
    };
    let existing = control
        .apps(&me, Some(&tenant.tenant_id))
        .await
        .map_err(cli_error)?;
    let mut mints = Vec::new();
    for i in 0..args.apps.max(1) {
        let name = format!("bench-mixed-{i}");
        let app_id = match existing.iter().find(|a| a.name == name) {
            Some(a) => a.app_id.clone(),
            None => {
                control
                    .create_app(&me, &tenant.tenant_id, &name, None)
                    .await
                    .map_err(cli_error)?
                    .app_id
            }
        };
        if !args.keep_quotas {
            lift_quotas(control, &app_id, &args.http).await?;
        }
        let (key_id, secret) = control.signing_key(&me, &app_id).await.map_err(cli_error)?;
        let app_id = parse_app(&app_id)?;
        let mint: confab_bench::Mint = Arc::new(move |user: &str| {
            let user = UserId::parse(user).map_err(|e| anyhow::anyhow!("{e}"))?;
            Ok(confab_logic::auth::mint(
                &key_id, &secret, &app_id, &user, 3600,
            )?)
        });
        mints.push(mint);
    }
    let rates = if args.sweep.is_empty() {
        vec![if args.rate == 0 { 1000 } else { args.rate }]
    } else {
        args.sweep.clone()
    };
    if let Some(dir) = &args.out_dir {
        std::fs::create_dir_all(dir)?;
    }
    let mut points = Vec::new();
    for rate in rates {
        let options = confab_bench::MixedOptions {
            http: args.http.clone(),
            apps: mints.clone(),
            users_per_app: args.users.max(2),
            group_size: args.group_size,
            rate,
            duration: std::time::Duration::from_secs(args.duration),
            max_in_flight: 20_000,
            run_id: format!("{:x}", confab_model::now_ms()),
        };
        let result = confab_bench::mixed(options).await?;
        let value = serde_json::to_value(&result)?;
        if let Some(dir) = &args.out_dir {
            std::fs::write(
                dir.join(format!("mixed-{rate}.json")),
                serde_json::to_string_pretty(&value)?,
            )?;
        }
        if let Some(path) = &args.out {
            std::fs::write(path, serde_json::to_string_pretty(&value)?)?;
        }
        if args.data.json {
            println!("{value}");
        } else {
            println!("{}", result.human());
        }
        points.push(confab_bench::mixed::SweepPoint::from(&result));
    }
    if let Some(dir) = &args.out_dir {
        std::fs::write(
            dir.join("sweep.json"),
            serde_json::to_string_pretty(&points)?,
        )?;
    }
    if let Some(path) = &args.chart {
        let title = format!(
            "confab bench mixed: {} apps x {} users, {} s per rate",
            args.apps.max(1),
            args.users.max(2),
            args.duration
        );
        std::fs::write(path, confab_bench::mixed::chart_svg(&points, &title))?;
        eprintln!("chart written to {}", path.display());
    }
    Ok(())
}
