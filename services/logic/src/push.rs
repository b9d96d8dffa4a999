//! Offline push in the logic layer: the device ops (`push_register`,
//! `push_unregister`, `app_state`, `conv_mute`, `push_settings`, and what
//! `logout` does to a registration), and the push decision after a message
//! is stored.
//!
//! The decision runs on its own task after the send has replied: it reads
//! the recipients' push registrations, mutes and DND hours in one query,
//! skips devices that are online in the foreground, renders the app's
//! templates and enqueues one job per device on the durable queue. It must
//! never slow down or fail a send: errors are logged and counted, and when
//! too many decisions are in flight new ones are dropped (counted) rather
//! than queued without bound.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use confab_model::{AppId, Body, ConvId, PushTemplates, StoredMessage, UserId};
use confab_proto::Frame;
use confab_push::Vendor;
use confab_push::template::{self, Notification};
use confab_store::{Dnd, NewPushJob, PushDevice, StoreError, Stores};

use crate::error::{LogicError, Result};
use crate::{Logic, Session};

const MAX_TOKEN: usize = 4096;
const MAX_BUNDLE: usize = 255;
const MAX_LOCALE: usize = 35;
/// Push decisions running at once on this node; more are dropped (and
/// counted): a stalled store must not turn into unbounded tasks.
pub const MAX_DECISIONS_IN_FLIGHT: usize = 4096;

fn printable(s: &str) -> bool {
    !s.chars().any(char::is_control)
}

pub(crate) async fn register(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let vendor = frame.vendor.as_deref().unwrap_or_default();
    let vendor = Vendor::parse(vendor).ok_or_else(|| {
        LogicError::bad_request(
            "vendor must be one of apns, fcm, huawei, xiaomi, oppo, vivo, honor",
        )
    })?;
    let token = frame.push_token.unwrap_or_default();
    if token.is_empty() || token.len() > MAX_TOKEN || !printable(&token) {
        return Err(LogicError::bad_request(
            "push_token must be 1 to 4096 printable characters",
        ));
    }
    let bundle = frame.bundle.unwrap_or_default();
    if bundle.is_empty() || bundle.len() > MAX_BUNDLE || !printable(&bundle) {
        return Err(LogicError::bad_request(
            "bundle (the iOS bundle id or Android package name) must be 1 to 255 printable characters",
        ));
    }
    let locale = frame.locale.unwrap_or_default();
    if locale.len() > MAX_LOCALE || !printable(&locale) {
        return Err(LogicError::bad_request(
            "locale must be at most 35 printable characters",
        ));
    }
    logic
        .stores
        .devices
        .register_push(
            &s.app_id,
            PushDevice {
                user_id: s.user_id.clone(),
                device_id: s.device_id.clone(),
                vendor: vendor.as_str().to_owned(),
                token,
                bundle,
                locale,
                background: false,
                updated_at: confab_model::now_ms(),
            },
        )
        .await?;
    logic.push_apps.set(&s.app_id, true);
    metrics::counter!("confab_push_registrations_total", "vendor" => vendor.as_str()).increment(1);
    Ok(Frame::default())
}

pub(crate) async fn unregister(logic: &Logic, s: &Session) -> Result<Frame> {
    logic
        .stores
        .devices
        .unregister_push(&s.app_id, &s.user_id, &s.device_id)
        .await?;
    Ok(Frame::default())
}

/// `logout`: the device gets no pushes until it logs in and registers again
/// (protocol.md).
pub(crate) async fn logout(logic: &Logic, s: &Session) -> Result<Frame> {
    unregister(logic, s).await
}

pub(crate) async fn app_state(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let background = frame
        .background
        .ok_or_else(|| LogicError::bad_request("background (true or false) is required"))?;
    // A device without a push registration has nothing to change: fine.
    logic
        .stores
        .devices
        .set_background(&s.app_id, &s.user_id, &s.device_id, background)
        .await?;
    Ok(Frame::default())
}

pub(crate) async fn conv_mute(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let muted = frame
        .muted
        .ok_or_else(|| LogicError::bad_request("muted (true or false) is required"))?;
    if frame.conv_id.is_empty() {
        return Err(LogicError::bad_request("conv_id is required"));
    }
    let conv =
        ConvId::parse(&frame.conv_id).map_err(|_| LogicError::not_found("no such conversation"))?;
    crate::handlers::authorize_conv(logic, s, &conv).await?;
    logic
        .stores
        .devices
        .set_muted(&s.app_id, &s.user_id, &conv, muted)
        .await?;
    Ok(Frame {
        conv_id: conv.as_str().to_owned(),
        muted: Some(muted),
        ..Default::default()
    })
}

/// `push_settings`: sets the user's do-not-disturb hours when `dnd_start`
/// and `dnd_end` are given (equal values clear them), and replies with the
/// settings in force either way.
pub(crate) async fn settings(logic: &Logic, s: &Session, frame: Frame) -> Result<Frame> {
    let devices = &logic.stores.devices;
    let dnd = match (frame.dnd_start, frame.dnd_end) {
        (None, None) => {
            if frame.tz_offset.is_some() {
                return Err(LogicError::bad_request(
                    "tz_offset goes with dnd_start and dnd_end",
                ));
            }
            devices.dnd(&s.app_id, &s.user_id).await?
        }
        (Some(start), Some(end)) => {
            if start >= 1440 || end >= 1440 {
                return Err(LogicError::bad_request(
                    "dnd_start and dnd_end are minutes of the day, 0 to 1439",
                ));
            }
            let tz = frame.tz_offset.unwrap_or(0);
            if !(-720..=840).contains(&tz) {
                return Err(LogicError::bad_request(
                    "tz_offset is minutes from UTC, -720 to 840",
                ));
            }
            let dnd = (start != end).then_some(Dnd {
                start_min: start as u16,
                end_min: end as u16,
                tz_offset_min: tz as i16,
            });
            devices.set_dnd(&s.app_id, &s.user_id, dnd).await?;
            dnd
        }
        _ => {
            return Err(LogicError::bad_request(
                "give both dnd_start and dnd_end (equal values clear do-not-disturb)",
            ));
        }
    };
    Ok(match dnd {
        Some(d) => Frame {
            dnd_start: Some(u32::from(d.start_min)),
            dnd_end: Some(u32::from(d.end_min)),
            tz_offset: Some(i32::from(d.tz_offset_min)),
            ..Default::default()
        },
        None => Frame::default(),
    })
}

/// Per app: whether it has any push device, as last read from the store.
/// Most sends in an app without push devices (a web-only app, a benchmark)
/// would otherwise pay a store read each for nothing. "None" is cached only
/// briefly, and a registration on this node sets "some" at once; a first
/// device registered on another logic node is seen here within
/// [`NO_DEVICES_TTL`] (the window in which a push can be missed is that
/// short, and only for an app's very first device).
#[derive(Debug, Default)]
pub(crate) struct AppDeviceFlags(dashmap::DashMap<AppId, (bool, std::time::Instant)>);

/// How long "this app has no push devices" is trusted.
pub(crate) const NO_DEVICES_TTL: std::time::Duration = std::time::Duration::from_secs(2);
/// How long "this app has push devices" is trusted (stale "some" only costs
/// a read that finds nothing).
const HAS_DEVICES_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl AppDeviceFlags {
    fn cached(&self, app: &AppId) -> Option<bool> {
        let entry = self.0.get(app)?;
        let (has, at) = *entry;
        let ttl = if has { HAS_DEVICES_TTL } else { NO_DEVICES_TTL };
        (at.elapsed() < ttl).then_some(has)
    }

    fn set(&self, app: &AppId, has: bool) {
        self.0.insert(app.clone(), (has, std::time::Instant::now()));
    }
}

/// Push decisions in flight on this node (tests wait for it to reach 0).
#[derive(Debug, Default, Clone)]
pub struct InFlight(Arc<AtomicUsize>);

impl InFlight {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::Acquire)
    }
}

struct Guard(Arc<AtomicUsize>);
impl Drop for Guard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What the decision needs from the send, owned so it can outlive it.
pub(crate) struct Sent {
    pub app_id: AppId,
    pub message: StoredMessage,
    pub recipients: Vec<UserId>,
    pub kind: String,
    pub text: Option<String>,
    pub templates: PushTemplates,
}

/// Called by `send` once a new message is stored: decides and enqueues
/// pushes on a task of its own. Never fails, never waits.
pub(crate) fn after_send(
    logic: &Logic,
    s: &Session,
    appended: &confab_store::Appended,
    body: &Body,
    silent: bool,
    templates: &PushTemplates,
) {
    if silent {
        metrics::counter!("confab_push_decisions_total", "result" => "silent").increment(1);
        return;
    }
    let recipients: Vec<UserId> = appended
        .inbox
        .iter()
        .map(|(u, _)| u)
        .filter(|u| **u != s.user_id)
        .cloned()
        .collect();
    if recipients.is_empty() {
        return;
    }
    let known = logic.push_apps.cached(&s.app_id);
    if known == Some(false) {
        metrics::counter!("confab_push_decisions_total", "result" => "no_devices").increment(1);
        return;
    }
    let in_flight = logic.push_in_flight.0.clone();
    if in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_DECISIONS_IN_FLIGHT {
        in_flight.fetch_sub(1, Ordering::AcqRel);
        metrics::counter!("confab_push_decisions_dropped_total").increment(1);
        return;
    }
    let guard = Guard(in_flight);
    let sent = Sent {
        app_id: s.app_id.clone(),
        message: appended.message.clone(),
        recipients,
        kind: body.kind.clone(),
        text: body.text().map(str::to_owned),
        templates: templates.clone(),
    };
    let stores = logic.stores.clone();
    let flags = logic.push_apps.clone();
    tokio::spawn(async move {
        let _guard = guard;
        let app = sent.app_id.clone();
        let msg_id = sent.message.msg_id.clone();
        if known.is_none() {
            match stores.devices.app_has_push_devices(&app).await {
                Ok(has) => {
                    flags.set(&app, has);
                    if !has {
                        metrics::counter!("confab_push_decisions_total", "result" => "no_devices")
                            .increment(1);
                        return;
                    }
                }
                // Decide anyway: the read below fails or succeeds on its own.
                Err(e) => {
                    tracing::debug!(app = %app, error = %e, "reading whether the app has push devices")
                }
            }
        }
        if let Err(e) = decide(&stores, sent).await {
            metrics::counter!("confab_push_enqueue_errors_total").increment(1);
            tracing::warn!(app = %app, msg_id = %msg_id, error = %e, "push decision failed; no offline push for this message");
        }
    });
}

/// Enqueues one job per recipient device that should get a push; returns
/// how many.
pub(crate) async fn decide(stores: &Stores, sent: Sent) -> std::result::Result<usize, StoreError> {
    let m = &sent.message;
    let targets = stores
        .devices
        .push_targets(&sent.app_id, &m.conv_id, &sent.recipients)
        .await?;
    if targets.is_empty() {
        return Ok(0);
    }
    let group_name = match m.conv_id.group_id() {
        Some(g) => Some(
            stores
                .groups
                .group(&sent.app_id, &g)
                .await?
                .map(|g| g.name)
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| g.as_str().to_owned()),
        ),
        None => None,
    };
    let rendered = template::render(
        &sent.templates,
        m.from.as_str(),
        group_name.as_deref(),
        &sent.kind,
        sent.text.as_deref(),
    );
    let mut data = BTreeMap::new();
    data.insert("conv_id".to_owned(), m.conv_id.as_str().to_owned());
    data.insert("msg_id".to_owned(), m.msg_id.clone());
    data.insert("seq".to_owned(), m.seq.to_string());
    data.insert("from".to_owned(), m.from.as_str().to_owned());
    let now = confab_model::now_ms();
    // Per user: which devices are connected, and the badge.
    let mut online: HashMap<UserId, Vec<String>> = HashMap::new();
    let mut badges: HashMap<UserId, u32> = HashMap::new();
    let mut jobs = vec![];
    for t in targets {
        let user = t.device.user_id.clone();
        let skip = if t.muted {
            Some("muted")
        } else if t.dnd.is_some_and(|d| d.quiet_at(now)) {
            Some("dnd")
        } else {
            if !online.contains_key(&user) {
                let routes = stores.routes.routes(&sent.app_id, &user).await?;
                online.insert(
                    user.clone(),
                    routes.into_iter().map(|r| r.device_id).collect(),
                );
            }
            let connected = online
                .get(&user)
                .is_some_and(|d| d.contains(&t.device.device_id));
            (connected && !t.device.background).then_some("online")
        };
        if let Some(result) = skip {
            metrics::counter!("confab_push_decisions_total", "result" => result).increment(1);
            continue;
        }
        let badge = match badges.get(&user) {
            Some(b) => *b,
            None => {
                let (_, total) = stores.reads.conversations(&sent.app_id, &user, 1).await?;
                let b = u32::try_from(total).unwrap_or(u32::MAX);
                badges.insert(user.clone(), b);
                b
            }
        };
        let notification = Notification {
            rendered: rendered.clone(),
            badge: Some(badge),
            conv_id: m.conv_id.as_str().to_owned(),
            data: data.clone(),
        };
        let push = notification.for_device(&t.device.token, &t.device.bundle);
        let payload = serde_json::to_string(&push)
            .map_err(|e| StoreError::Corrupt(format!("encoding a push: {e}")))?;
        metrics::counter!("confab_push_decisions_total", "result" => "enqueued").increment(1);
        jobs.push(NewPushJob {
            id: push.id,
            app_id: sent.app_id.clone(),
            user_id: user,
            device_id: t.device.device_id,
            vendor: t.device.vendor,
            payload,
        });
    }
    let n = jobs.len();
    stores.push_queue.enqueue(jobs).await?;
    Ok(n)
}

#[cfg(test)]
#[path = "push_tests.rs"]
mod tests;
