//! A control plane as its own service, streaming config to data-plane cells
//! over gRPC: cells keep their tenants apart, and the data plane keeps
//! serving on its last config (cached on disk) while the control plane is
//! down, catching up when it returns.

use std::time::Duration;

use confab::settings::ServeSettings;
use confab::startup::{self, RunningApp};
use confab_client::{Client, ClientError, Transport};
use confab_config::words::{WordAction, WordRule};
use confab_control::model::CreatedApp;
use confab_control::service::{Actor, Control, WordScope};

use crate::helpers::*;

const SECRET: &str = "cell-secret-for-tests";

fn token(app: &CreatedApp, user: &str) -> String {
    let now = now_s();
    mint(
        &app.key_id,
        &app.secret,
        serde_json::json!({"sub": user, "app": app.app_id, "iat": now, "exp": now + 600}),
    )
}

async fn login(node: &RunningApp, app: &CreatedApp, user: &str) -> Result<Client, ClientError> {
    let c = Client::connect(Transport::WsJson, node.http_addr).await?;
    c.login(&token(app, user), &format!("{user}-d"), "web")
        .await?;
    Ok(c)
}

/// `confab control` as a real process (so that killing it kills every
/// stream it serves), on SQLite in `dir`.
fn start_control(dir: &std::path::Path, grpc: std::net::SocketAddr) -> std::process::Child {
    let http = crate::durability::free_addr();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .arg("control")
        .env("CONFAB_DATA_DIR", dir)
        .env("CONFAB_HTTP_ADDR", http.to_string())
        .env("CONFAB_GRPC_ADDR", grpc.to_string())
        .env("CONFAB_CELL_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn confab control");
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(grpc).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "control did not start"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

fn node_settings(
    dir: &std::path::Path,
    control: std::net::SocketAddr,
    cell: &str,
) -> ServeSettings {
    let mut s = ServeSettings::for_tests(dir.to_path_buf());
    s.cell_secret = Some(SECRET.into());
    s.control_addr = Some(format!("http://{control}"));
    s.cell = cell.into();
    s
}

async fn tenant_app(control: &Control, tenant: &str, cell: &str) -> CreatedApp {
    let me = Actor::System;
    control.create_tenant(&me, tenant).await.expect("tenant");
    control
        .assign_cell(&me, tenant, cell)
        .await
        .expect("assign");
    let app = control
        .create_app(&me, tenant, "chat", None)
        .await
        .expect("app");
    let mut settings = control.app(&me, &app.app_id).await.expect("app").settings;
    settings.quotas.user_messages_per_sec = 3;
    control
        .update_app(&me, &app.app_id, None, Some(settings), None)
        .await
        .expect("quota");
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cells_serve_only_their_tenants_and_survive_a_control_plane_outage() {
    let (control_dir, dir1, dir2) = (
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
        tempfile::tempdir().expect("tempdir"),
    );
    let grpc = crate::durability::free_addr();
    let mut control = start_control(control_dir.path(), grpc);
    let plane = control_of_data_dir(control_dir.path()).await;
    let me = Actor::System;
    plane.create_cell(&me, "c1", "first").await.expect("cell");
    plane.create_cell(&me, "c2", "second").await.expect("cell");
    let app1 = tenant_app(&plane, "t-one", "c1").await;
    let app2 = tenant_app(&plane, "t-two", "c2").await;

    let n1 = startup::build(node_settings(dir1.path(), grpc, "c1"))
        .await
        .expect("cell 1")
        .spawn();
    let n2 = startup::build(node_settings(dir2.path(), grpc, "c2"))
        .await
        .expect("cell 2")
        .spawn();
    for node in [&n1, &n2] {
        wait_config(node.config.as_ref().expect("config"), &plane).await;
        assert!(
            node.control.is_none(),
            "a cell node runs no control plane of its own"
        );
    }

    // Each cell serves its own tenants only; a refusal names no other tenant.
    login(&n1, &app1, "alice").await.expect("t-one on its cell");
    login(&n2, &app2, "alice").await.expect("t-two on its cell");
    for (node, app) in [(&n2, &app1), (&n1, &app2)] {
        match login(node, app, "mallory").await {
            Err(ClientError::Refused { code, message }) => {
                assert_eq!(code, "unauthorized");
                assert!(
                    !message.contains(&app.app_id) && !message.contains("t-"),
                    "{message}"
                );
            }
            other => panic!("another cell's tenant logged in: {:?}", other.map(|_| ())),
        }
    }
    // Each cell has its own database: a message in cell 1 is not in cell 2's.
    let alice = login(&n1, &app1, "alice").await.expect("login");
    let sent = alice.send_text("bob", "m1", "hi").await.expect("send");
    let conv = confab_model::ConvId::parse(&sent.conv_id).expect("conv");
    let app1_id = confab_model::AppId::parse(&app1.app_id).expect("app id");
    for (node, expect) in [(&n1, 1), (&n2, 0)] {
        let stored = node
            .stores
            .as_ref()
            .expect("stores")
            .messages
            .history(&app1_id, &conv, None, 10)
            .await
            .expect("history");
        assert_eq!(stored.len(), expect);
    }

    // The control plane dies: logins, sends and quota checks go on.
    control.kill().expect("kill -9 control");
    control.wait().expect("reap");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let bob = login(&n1, &app1, "bob")
        .await
        .expect("login without control");
    let mut results = Vec::new();
    for i in 0..5 {
        results.push(
            bob.send_text("alice", &format!("q{i}"), "hey")
                .await
                .is_ok(),
        );
    }
    assert_eq!(
        results,
        [true, true, true, false, false],
        "the quota still holds"
    );

    // A cell node restarting while the control plane is down starts from its cache.
    n1.shutdown().await.expect("stop cell 1");
    let n1 = startup::build(node_settings(dir1.path(), grpc, "c1"))
        .await
        .expect("cell 1 restarts from its cache")
        .spawn();
    login(&n1, &app1, "carol")
        .await
        .expect("login on cached config");
    assert!(
        login(&n1, &app2, "carol").await.is_err(),
        "still only its tenants"
    );

    // The control plane returns; a change made now reaches the cell.
    let mut control = start_control(control_dir.path(), grpc);
    plane
        .change_words(
            &me,
            &WordScope::App(app1.app_id.clone()),
            vec![WordRule {
                word: "verboten".into(),
                action: WordAction::Block,
            }],
            vec![],
        )
        .await
        .expect("words");
    wait_config(n1.config.as_ref().expect("config"), &plane).await;
    let dave = login(&n1, &app1, "dave").await.expect("login");
    match dave.send_text("alice", "v", "ver.boten").await {
        Err(ClientError::Refused { code, .. }) => assert_eq!(code, "content_blocked"),
        other => panic!("the change after the restart did not apply: {other:?}"),
    }
    control.kill().expect("stop control");
    control.wait().expect("reap");
}
