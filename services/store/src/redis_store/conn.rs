//! One Redis connection for both deployments: a single endpoint (or a
//! cluster proxy) through a `ConnectionManager`, or a Redis Cluster through
//! the cluster-aware client, which routes each command to the master of its
//! key's hash slot and follows `MOVED`/`ASK` after resharding or failover.
//!
//! The stores above only see [`RedisConn`] (it implements `ConnectionLike`),
//! so the route table and the ring have one implementation for both. What
//! differs is grouping: a pipeline sent to a cluster must stay in one slot,
//! so multi-key writes go through [`SlotBatch`], which files every command
//! under the key it touches — one pipeline per slot, never a `CROSSSLOT`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use crate::{Result, StoreError};

fn unavailable(e: redis::RedisError) -> StoreError {
    StoreError::Unavailable(format!("redis: {e}"))
}

/// Where Redis is (`CONFAB_REDIS_URL`, `CONFAB_REDIS_CLUSTER`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RedisTarget {
    /// One endpoint: a standalone server, or a proxy in front of a cluster.
    Single(String),
    /// Seed nodes of a Redis Cluster (one reachable seed is enough: the
    /// client learns the other masters from `CLUSTER SLOTS`).
    Cluster(Vec<String>),
}

impl RedisTarget {
    /// Parses the configured URL. With `cluster`, it is a comma-separated
    /// list of `redis://` seed nodes; without it, exactly one URL (a comma
    /// there means the operator forgot the switch: refused, not guessed).
    /// The error names no URL: URLs may carry a password.
    pub fn parse(url: &str, cluster: bool) -> std::result::Result<Self, String> {
        let urls: Vec<String> = url
            .split(',')
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .map(str::to_owned)
            .collect();
        if urls.is_empty() {
            return Err("the Redis URL is empty".into());
        }
        for (i, u) in urls.iter().enumerate() {
            if !(u.starts_with("redis://") || u.starts_with("rediss://")) {
                return Err(format!(
                    "Redis URL #{} must start with redis:// or rediss://",
                    i + 1
                ));
            }
        }
        match (cluster, urls.len()) {
            (true, _) => Ok(Self::Cluster(urls)),
            (false, 1) => Ok(Self::Single(urls.into_iter().collect())),
            (false, _) => Err(
                "several Redis URLs given: set CONFAB_REDIS_CLUSTER=true for a Redis Cluster"
                    .into(),
            ),
        }
    }
}

// Not boxed: the connection is cloned for every command, and a boxed
// variant would allocate on each clone; a few hundred bytes on the stack
// are cheaper.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
enum Inner {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A Redis connection (cheap to clone; clones share the connection) and
/// the prefix of every key the stores write.
#[derive(Clone)]
pub struct RedisConn {
    inner: Inner,
    prefix: Arc<str>,
}

/// The key prefix in production. Keys are `confab:{<hash tag>}:<what>`.
pub const DEFAULT_PREFIX: &str = "confab";

impl RedisConn {
    /// Connects with the message path's timeouts. Both clients reconnect by
    /// themselves (a restarted server, a failed-over master); the cluster
    /// client refreshes its slot map on `MOVED` and on connection errors.
    #[tracing::instrument(skip_all, fields(cluster = matches!(target, RedisTarget::Cluster(_))))]
    pub async fn connect(target: &RedisTarget, timeout: Duration) -> Result<Self> {
        let inner = match target {
            RedisTarget::Single(url) => {
                let client = redis::Client::open(url.as_str()).map_err(unavailable)?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_number_of_retries(1)
                    .set_connection_timeout(timeout)
                    .set_response_timeout(timeout);
                Inner::Single(
                    client
                        .get_connection_manager_with_config(config)
                        .await
                        .map_err(unavailable)?,
                )
            }
            RedisTarget::Cluster(seeds) => {
                // A few quick retries ride out a redirect or a slot-map
                // refresh; anything longer is an outage, and callers on the
                // message path stop waiting after `timeout` anyway.
                let client = redis::cluster::ClusterClientBuilder::new(seeds.clone())
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    .retries(3)
                    .min_retry_wait(10)
                    .max_retry_wait(100)
                    .build()
                    .map_err(unavailable)?;
                Inner::Cluster(client.get_async_connection().await.map_err(unavailable)?)
            }
        };
        Ok(Self {
            inner,
            prefix: DEFAULT_PREFIX.into(),
        })
    }

    /// The same connection writing keys under another prefix (several test
    /// stores sharing one cluster; keys stay `<prefix>:{<tag>}:<what>`).
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// The prefix of every key.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether this is a Redis Cluster connection.
    pub fn is_cluster(&self) -> bool {
        matches!(self.inner, Inner::Cluster(_))
    }

    /// The pipeline group of `key`: its hash slot on a cluster; one group
    /// for a single endpoint (everything goes in one round trip there).
    fn group_of(&self, key: &str) -> u16 {
        match self.inner {
            Inner::Single(_) => 0,
            Inner::Cluster(_) => redis::cluster_routing::get_slot(key.as_bytes()),
        }
    }

    /// An empty batch of writes for this connection.
    pub fn batch(&self) -> SlotBatch {
        SlotBatch {
            conn: self.clone(),
            pipes: BTreeMap::new(),
        }
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match &mut self.inner {
            Inner::Single(c) => c.req_packed_command(cmd),
            Inner::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match &mut self.inner {
            Inner::Single(c) => c.req_packed_commands(cmd, offset, count),
            Inner::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}

/// Writes whose replies are ignored, grouped so that no pipeline crosses a
/// hash slot: [`SlotBatch::on`] hands out the pipeline of the key a command
/// touches. On a single endpoint every key shares one pipeline.
pub struct SlotBatch {
    conn: RedisConn,
    pipes: BTreeMap<u16, Pipeline>,
}

impl SlotBatch {
    /// The pipeline for commands on `key` (name the key the command
    /// touches; keys sharing a hash tag share the pipeline).
    pub fn on(&mut self, key: &str) -> &mut Pipeline {
        let group = self.conn.group_of(key);
        self.pipes.entry(group).or_default()
    }

    /// How many round trips [`SlotBatch::run`] makes (one per slot).
    pub fn pipelines(&self) -> usize {
        self.pipes.len()
    }

    /// Sends every pipeline, concurrently; fails if any fails (the writes
    /// of the others stand: every caller's writes are idempotent).
    pub async fn run(self) -> Result<()> {
        let conn = self.conn;
        let sends = self.pipes.into_values().map(|pipe| {
            let mut conn = conn.clone();
            async move { pipe.query_async::<()>(&mut conn).await.map_err(unavailable) }
        });
        futures_util::future::try_join_all(sends).await.map(|_| ())
    }
}
