//! `/v1/groups` (docs/rest.md): the app's backend manages groups with the
//! owner's rights through the same logic as the wire ops — every change is
//! an `event` the members' devices get (`actor: "system"`). And the
//! isolation matrix over every `/v1` route of the served OpenAPI document:
//! no key is `401`; another app's key gets no data and changes nothing.

use std::time::Duration;

use confab_client::Client;
use confab_control::service::Actor;
use confab_proto::{Frame, ops};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::rest::http;
use crate::users_rest::{Api, assert_error};

const WAIT: Duration = Duration::from_secs(5);

fn body_of(e: &Frame) -> Value {
    serde_json::from_str(&e.body).unwrap_or(Value::Null)
}

/// The next event of `kind` this device gets (earlier kinds are skipped),
/// made by the app.
async fn event(c: &mut Client, kind: &str) -> Value {
    loop {
        let e = c.next_op(ops::EVENT, WAIT).await.expect("an event");
        if e.event != kind {
            continue;
        }
        let body = body_of(&e);
        assert_eq!(body["actor"], "system", "{body}");
        assert_eq!(e.from, "system", "{e:?}");
        return body;
    }
}

async fn gsend(c: &Client, group: &str, cid: &str) -> Frame {
    c.request(Frame {
        op: ops::SEND.into(),
        to: Some(confab_proto::Peer {
            kind: "group".into(),
            id: group.into(),
        }),
        body: json!({"type": "text", "text": cid}).to_string(),
        client_msg_id: cid.into(),
        ..Default::default()
    })
    .await
    .expect("reply")
}

#[tokio::test]
async fn rest_groups_are_managed_as_the_app_and_members_see_every_change() {
    let server = TestServer::start().await;
    let api = Api::of(&server);
    let mut alice = server.user("alice").await;
    let mut bob = server.user("bob").await;

    let created = api
        .post_idem(
            "/v1/groups",
            "create-team-42-0001",
            json!({"group_id": "team-42", "owner": "alice", "members": ["bob", "alice"], "name": "Team 42", "custom": {"project": "apollo"}}),
        )
        .await;
    assert_eq!(created.status, 201, "{created:?}");
    assert_eq!(created.body["owner"], "alice");
    assert_eq!(created.body["member_count"], 2);
    assert_eq!(created.body["join_policy"], "approval");
    assert_eq!(created.body["custom"], json!({"project": "apollo"}));
    let replay = api
        .post_idem(
            "/v1/groups",
            "create-team-42-0001",
            json!({"group_id": "team-42", "owner": "alice", "members": ["bob", "alice"], "name": "Team 42", "custom": {"project": "apollo"}}),
        )
        .await;
    assert_eq!(replay.status, 201);
    assert_eq!(replay.body, created.body);
    assert_error(
        &api.post(
            "/v1/groups",
            json!({"group_id": "team-42", "owner": "alice"}),
        )
        .await,
        409,
        "conflict",
    );
    event(&mut alice, "created").await;
    event(&mut bob, "created").await;

    let got = api.get("/v1/groups/team-42").await;
    assert_eq!(got.status, 200, "{got:?}");
    assert_eq!(got.body["name"], "Team 42");

    let updated = api
        .call(
            "PATCH",
            "/v1/groups/team-42",
            Some(json!({"announcement": "ship it"})),
        )
        .await;
    assert_eq!(updated.status, 200, "{updated:?}");
    assert_eq!(updated.body["announcement"], "ship it");
    assert_eq!(updated.body["name"], "Team 42");
    event(&mut bob, "updated").await;

    let added = api
        .post(
            "/v1/groups/team-42/members",
            json!({"user_ids": ["carol", "dave", "bob"]}),
        )
        .await;
    assert_eq!(added.status, 200, "{added:?}");
    assert_eq!(added.body["added"], json!(["carol", "dave"]));
    let joined = event(&mut bob, "joined").await;
    assert_eq!(joined["users"], json!(["carol", "dave"]));

    // Members, paged by user id.
    let mut seen = Vec::new();
    let mut path = "/v1/groups/team-42/members?limit=3".to_owned();
    loop {
        let page = api.get(&path).await;
        assert_eq!(page.status, 200, "{page:?}");
        for m in page.body["items"].as_array().unwrap() {
            seen.push(format!(
                "{}:{}",
                m["user_id"].as_str().unwrap(),
                m["role"].as_str().unwrap()
            ));
        }
        match page.body["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/groups/team-42/members?limit=3&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(
        seen,
        ["alice:owner", "bob:member", "carol:member", "dave:member"]
    );

    let role = api
        .call(
            "PUT",
            "/v1/groups/team-42/members/bob/role",
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(role.status, 200, "{role:?}");
    assert_eq!(role.body["role"], "admin");
    event(&mut alice, "role").await;

    // A muted member's sends are refused; 0 lifts it.
    let muted = api
        .post(
            "/v1/groups/team-42/members/carol/mute",
            json!({"duration_s": 600}),
        )
        .await;
    assert_eq!(muted.status, 200, "{muted:?}");
    assert!(muted.body["muted_until"].is_string(), "{muted:?}");
    let carol = server.user("carol").await;
    let refused = gsend(&carol, "team-42", "c1").await;
    assert_eq!(error_code(&refused), "muted", "{refused:?}");
    let unmuted = api
        .post(
            "/v1/groups/team-42/members/carol/mute",
            json!({"duration_s": 0}),
        )
        .await;
    assert_eq!(unmuted.body["muted_until"], Value::Null, "{unmuted:?}");
    assert_eq!(gsend(&carol, "team-42", "c2").await.ok, Some(true));

    // The whole group: only the owner and admins (and the system) speak.
    let all = api
        .post("/v1/groups/team-42/mute", json!({"mute_all": true}))
        .await;
    assert_eq!(all.status, 200, "{all:?}");
    assert_eq!(all.body["mute_all"], true);
    assert_eq!(error_code(&gsend(&carol, "team-42", "c3").await), "muted");
    assert_eq!(
        gsend(&bob, "team-42", "b1").await.ok,
        Some(true),
        "an admin speaks"
    );
    let system = api
        .post("/v1/messages", json!({"from_system": true, "to": {"kind": "group", "id": "team-42"}, "body": {"type": "text", "text": "maintenance tonight"}}))
        .await;
    assert_eq!(
        system.status, 201,
        "the system sends to a muted group: {system:?}"
    );

    // Removing: never the owner; a non-member is 404.
    assert_error(
        &api.call("DELETE", "/v1/groups/team-42/members/alice", None)
            .await,
        403,
        "forbidden",
    );
    assert_error(
        &api.call("DELETE", "/v1/groups/team-42/members/zed", None)
            .await,
        404,
        "not_found",
    );
    assert_error(
        &api.call(
            "PUT",
            "/v1/groups/team-42/members/alice/role",
            Some(json!({"role": "member"})),
        )
        .await,
        400,
        "bad_request",
    );
    assert_error(
        &api.call(
            "PUT",
            "/v1/groups/team-42/members/bob/role",
            Some(json!({"role": "king"})),
        )
        .await,
        400,
        "bad_request",
    );
    assert_error(
        &api.post(
            "/v1/groups/team-42/members/carol/mute",
            json!({"duration_s": -1}),
        )
        .await,
        400,
        "bad_request",
    );
    assert_error(
        &api.get("/v1/groups/team-42/members?cursor=%21%21").await,
        400,
        "bad_request",
    );
    let removed = api
        .call("DELETE", "/v1/groups/team-42/members/dave", None)
        .await;
    assert_eq!(removed.status, 204, "{removed:?}");

    // Dismissed: gone for good, the id is never reused.
    let dismissed = api.call("DELETE", "/v1/groups/team-42", None).await;
    assert_eq!(dismissed.status, 204, "{dismissed:?}");
    assert_error(&api.get("/v1/groups/team-42").await, 404, "not_found");
    assert_error(
        &api.call("DELETE", "/v1/groups/team-42", None).await,
        404,
        "not_found",
    );
    assert_error(
        &api.post(
            "/v1/groups",
            json!({"group_id": "team-42", "owner": "alice"}),
        )
        .await,
        409,
        "conflict",
    );
    assert_error(&api.get("/v1/groups/nope").await, 404, "not_found");
    assert_error(
        &api.post("/v1/groups", json!({"members": ["bob"]})).await,
        400,
        "bad_request",
    );
    // Bob's devices saw every change in order, on the wire and by sync.
    let kinds: Vec<String> = sync_all(&bob, 0, 100)
        .await
        .iter()
        .filter_map(|m| {
            let body: Value = serde_json::from_str(&m.body).ok()?;
            (body["type"] == "event").then(|| body["event"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "created",
            "updated",
            "joined",
            "role",
            "muted",
            "unmuted",
            "muted",
            "removed",
            "dismissed"
        ]
    );
}

/// Fills an OpenAPI path template with this app's things.
fn fill(template: &str, ids: &[(&str, &str)]) -> String {
    let mut path = template.to_owned();
    for (name, value) in ids {
        path = path.replace(&format!("{{{name}}}"), value);
    }
    path
}

/// The example of an operation's JSON request body, from its schema.
fn example_body(doc: &Value, op: &Value) -> Option<Value> {
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    if schema.is_null() {
        return None;
    }
    let schema = match schema["$ref"].as_str() {
        Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap_or_default()],
        None => schema,
    };
    Some(schema.get("example").cloned().unwrap_or_else(|| json!({})))
}

#[tokio::test]
async fn every_v1_route_refuses_no_key_and_shows_a_foreign_app_nothing() {
    let server = TestServer::start().await;
    let api = Api::of(&server);
    // This app's things, with markers no other app may ever see.
    let sent = api
        .post("/v1/messages", json!({"from": "alice", "to": {"kind": "user", "id": "bob"}, "body": {"type": "text", "text": "secret plans"}}))
        .await;
    assert_eq!(sent.status, 201, "{sent:?}");
    let msg_id = sent.body["msg_id"].as_str().unwrap().to_owned();
    let conv = sent.body["conv_id"].as_str().unwrap().to_owned();
    assert_eq!(
        api.post(
            "/v1/users",
            json!({"user_id": "bob", "nickname": "Secret Bob"})
        )
        .await
        .status,
        201
    );
    assert_eq!(
        api.post("/v1/groups", json!({"group_id": "secret-group", "owner": "alice", "members": ["bob"], "name": "Secret Group"}))
            .await
            .status,
        201
    );
    assert_eq!(
        api.post(
            "/v1/rooms",
            json!({"room_id": "secret-room", "name": "Secret Room"})
        )
        .await
        .status,
        201
    );
    let ids = [
        ("user_id", "zoe-secret"),
        ("conv_id", conv.as_str()),
        ("msg_id", msg_id.as_str()),
        ("group_id", "secret-group"),
        ("room_id", "secret-room"),
        ("device_id", "bob-phone"),
    ];
    let markers = [
        server.app_id.as_str(),
        "secret plans",
        msg_id.as_str(),
        "Secret Zoe",
        "Secret Group",
        "Secret Room",
    ];

    let me = Actor::System;
    let tenant = server
        .control()
        .create_tenant(&me, "other")
        .await
        .expect("tenant");
    let other = server
        .control()
        .create_app(&me, &tenant.tenant_id, "other-app", None)
        .await
        .expect("app");
    server.config_applied().await;

    let doc = http(api.addr, "GET", "/v1/openapi.json", None, &[], None)
        .await
        .body;
    let paths = doc["paths"].as_object().expect("paths");
    let mut covered = 0;
    for (template, item) in paths {
        for (method, op) in item.as_object().expect("path item") {
            if !["get", "post", "put", "patch", "delete"].contains(&method.as_str()) {
                continue;
            }
            let method = method.to_uppercase();
            let mut path = fill(template, &ids);
            if template == "/v1/users/online" {
                path.push_str("?user_ids=zoe-secret");
            }
            let body = example_body(&doc, op).map(|b| b.to_string());
            let anonymous = http(api.addr, &method, &path, None, &[], body.as_deref()).await;
            assert_error(&anonymous, 401, "unauthorized");
            let foreign = http(
                api.addr,
                &method,
                &path,
                Some(&other.secret),
                &[],
                body.as_deref(),
            )
            .await;
            assert!(foreign.status < 500, "{method} {path}: {foreign:?}");
            let text = foreign.body.to_string();
            for marker in markers {
                assert!(
                    !text.contains(marker),
                    "{method} {path} leaked {marker:?}: {text}"
                );
            }
            // Reads of this app's things by id are simply not found.
            if method == "GET"
                && template.contains('{')
                && !template.ends_with("/conversations")
                && !template.ends_with("/devices")
            {
                assert_eq!(foreign.status, 404, "{method} {path}: {foreign:?}");
            }
            covered += 1;
        }
    }
    assert!(covered >= 30, "only {covered} operations in the document");

    // And nothing of this app changed.
    let group = api.get("/v1/groups/secret-group").await;
    assert_eq!(group.status, 200, "{group:?}");
    assert_eq!(group.body["member_count"], 2);
    assert_eq!(group.body["mute_all"], false);
    assert_eq!(
        api.get("/v1/users/bob").await.body["nickname"],
        "Secret Bob"
    );
    assert_eq!(api.get("/v1/rooms/secret-room").await.status, 200);
    let message = api.get(&format!("/v1/messages/{msg_id}")).await;
    assert_eq!(message.body["recalled"], false, "{message:?}");
    let history = api.get(&format!("/v1/conversations/{conv}/messages")).await;
    assert_eq!(history.body["items"].as_array().unwrap().len(), 1);
}
