//! The admin CLI of api.md ("First start and the admin CLI"), on the real
//! binary, including while the server runs.

use confab_client::{Client, Transport};
use confab_proto::ops;

use crate::durability::{cli, free_addr, start};
use crate::helpers::*;

#[tokio::test]
async fn cli_creates_tenants_and_apps_whose_tokens_work_on_the_running_server() {
    let data = tempfile::tempdir().expect("tempdir");
    let mut server = start(data.path(), free_addr(), free_addr());

    let tenant: serde_json::Value = serde_json::from_str(&cli(
        data.path(),
        &["admin", "tenant", "create", "--name", "acme", "--json"],
    ))
    .expect("json");
    assert_eq!(tenant["name"], "acme");
    let created: serde_json::Value = serde_json::from_str(&cli(
        data.path(),
        &["admin", "app", "create", "--tenant", "acme", "--json"],
    ))
    .expect("json");
    for field in ["tenant_id", "app_id", "key_id", "secret"] {
        assert!(
            created[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field} in {created}"
        );
    }
    assert!(
        created["secret"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sk_")
    );
    assert_eq!(created["tenant_id"], tenant["tenant_id"]);

    // A token minted with any JWT library from the printed key works at once.
    let now = now_s();
    let app_id = created["app_id"].as_str().unwrap_or_default();
    let token = mint(
        created["key_id"].as_str().unwrap_or_default(),
        created["secret"].as_str().unwrap_or_default(),
        serde_json::json!({"sub": "alice", "app": app_id, "iat": now, "exp": now + 600}),
    );
    // The running server picks the CLI's change up within a second.
    let control = crate::helpers::control_of_data_dir(data.path()).await;
    crate::helpers::wait_config_of(server.http, control.version().await.expect("version")).await;
    let alice = Client::connect(Transport::WsJson, server.http)
        .await
        .expect("connect");
    alice
        .login(&token, "a", "web")
        .await
        .expect("login with a CLI-created app");
    let minted: serde_json::Value = serde_json::from_str(&cli(
        data.path(),
        &["token", "mint", "--app", app_id, "--user", "bob", "--json"],
    ))
    .expect("json");
    let mut bob = Client::connect(Transport::Tcp, server.tcp)
        .await
        .expect("connect");
    bob.login(minted["token"].as_str().unwrap_or_default(), "b", "ios")
        .await
        .expect("login");
    alice
        .send_text("bob", "c1", "hello from a new app")
        .await
        .expect("send");
    assert!(bob.next_op(ops::MESSAGE, WAIT).await.is_some());

    // Rotation: a new key works, the old one stops after revocation.
    let rotated: serde_json::Value = serde_json::from_str(&cli(
        data.path(),
        &["admin", "key", "rotate", "--app", app_id, "--json"],
    ))
    .expect("json");
    assert_ne!(rotated["key_id"], created["key_id"]);
    cli(
        data.path(),
        &[
            "admin",
            "key",
            "revoke",
            "--key",
            created["key_id"].as_str().unwrap_or_default(),
        ],
    );
    let listed: serde_json::Value = serde_json::from_str(&cli(
        data.path(),
        &["admin", "key", "list", "--app", app_id, "--json"],
    ))
    .expect("json");
    assert_eq!(listed.as_array().map(|a| a.len()), Some(2));
    assert!(
        !listed.to_string().contains("sk_"),
        "secrets are never listed"
    );

    server.child.kill().ok();
    server.child.wait().ok();
}

#[test]
fn cli_errors_are_clear_and_exit_nonzero() {
    let data = tempfile::tempdir().expect("tempdir");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_confab"))
        .args(["admin", "app", "create", "--tenant", "nobody"])
        .env("CONFAB_DATA_DIR", data.path())
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no tenant"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
