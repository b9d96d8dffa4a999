//! Generates Rust types from `proto/confab/v1/frame.proto` with a vendored
//! `protoc`, so that no system protoc is needed. Serde derives make the JSON
//! encoding the same struct as the protobuf one (see `src/json.rs`).

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    // SAFETY: build scripts are single-threaded; prost-build reads PROTOC.
    unsafe { std::env::set_var("PROTOC", protoc) };

    let mut config = prost_build::Config::new();
    config.type_attribute(".", "#[derive(serde::Serialize, serde::Deserialize)]");
    config.type_attribute(".", "#[serde(default)]");
    // Leave unset fields out of JSON: empty strings, zero numbers in non-optional
    // fields, empty lists, absent options.
    for (field, skip) in SKIPS {
        config.field_attribute(field, format!("#[serde(skip_serializing_if = \"{skip}\")]"));
    }
    config.field_attribute(
        ".confab.v1.Frame.custom",
        "#[serde(with = \"crate::json::opt_body\")]",
    );
    for field in JSON_BODIES {
        config.field_attribute(field, "#[serde(with = \"crate::json::body\")]");
    }
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_with_config(
            config,
            &[
                "proto/confab/v1/frame.proto",
                "proto/confab/v1/cluster.proto",
                "proto/confab/v1/control.proto",
            ],
            &["proto"],
        )?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}

const JSON_BODIES: &[&str] = &[
    ".confab.v1.Frame.body",
    ".confab.v1.Message.body",
    ".confab.v1.Group.custom",
];

const SKIPS: &[(&str, &str)] = &[
    (".confab.v1.Peer.kind", "String::is_empty"),
    (".confab.v1.Peer.id", "String::is_empty"),
    (".confab.v1.Message.inbox_seq", "Option::is_none"),
    (".confab.v1.Message.client_msg_id", "String::is_empty"),
    (".confab.v1.Message.recalled", "std::ops::Not::not"),
    (".confab.v1.Message.to", "Option::is_none"),
    (".confab.v1.Conversation.peer", "Option::is_none"),
    (".confab.v1.Conversation.last_message", "Option::is_none"),
    (".confab.v1.Frame.rid", "Option::is_none"),
    (".confab.v1.Frame.ok", "Option::is_none"),
    (".confab.v1.Frame.error", "Option::is_none"),
    (".confab.v1.Frame.token", "String::is_empty"),
    (".confab.v1.Frame.device_id", "String::is_empty"),
    (".confab.v1.Frame.platform", "String::is_empty"),
    (".confab.v1.Frame.user_id", "String::is_empty"),
    (".confab.v1.Frame.session_id", "String::is_empty"),
    (".confab.v1.Frame.server_time", "Option::is_none"),
    (".confab.v1.Frame.client_version", "String::is_empty"),
    (".confab.v1.Frame.inbox_seq", "Option::is_none"),
    (".confab.v1.Frame.conv_id", "String::is_empty"),
    (".confab.v1.Frame.seq", "Option::is_none"),
    (".confab.v1.Frame.msg_id", "String::is_empty"),
    (".confab.v1.Frame.from", "String::is_empty"),
    (".confab.v1.Frame.to", "Option::is_none"),
    (".confab.v1.Frame.body", "String::is_empty"),
    (".confab.v1.Frame.ts", "Option::is_none"),
    (".confab.v1.Frame.client_msg_id", "String::is_empty"),
    (".confab.v1.Frame.masked", "Option::is_none"),
    (".confab.v1.Frame.recalled", "Option::is_none"),
    (".confab.v1.Frame.since", "Option::is_none"),
    (".confab.v1.Frame.limit", "Option::is_none"),
    (".confab.v1.Frame.before_seq", "Option::is_none"),
    (".confab.v1.Frame.messages", "Vec::is_empty"),
    (".confab.v1.Frame.has_more", "Option::is_none"),
    (".confab.v1.Frame.conversations", "Vec::is_empty"),
    (".confab.v1.Frame.total_unread", "Option::is_none"),
    (".confab.v1.Frame.reason", "String::is_empty"),
    (".confab.v1.Frame.event", "String::is_empty"),
    (".confab.v1.Frame.retry_after_ms", "Option::is_none"),
    (".confab.v1.Frame.group_id", "String::is_empty"),
    (".confab.v1.Frame.name", "Option::is_none"),
    (".confab.v1.Frame.avatar", "Option::is_none"),
    (".confab.v1.Frame.announcement", "Option::is_none"),
    (".confab.v1.Frame.custom", "Option::is_none"),
    (".confab.v1.Frame.join_policy", "Option::is_none"),
    (".confab.v1.Frame.user_ids", "Vec::is_empty"),
    (".confab.v1.Frame.role", "Option::is_none"),
    (".confab.v1.Frame.duration_ms", "Option::is_none"),
    (".confab.v1.Frame.mute_all", "Option::is_none"),
    (".confab.v1.Frame.group", "Option::is_none"),
    (".confab.v1.Frame.group_members", "Vec::is_empty"),
    (".confab.v1.Frame.cursor", "String::is_empty"),
    (".confab.v1.Frame.pending", "Option::is_none"),
    (".confab.v1.Frame.room_id", "String::is_empty"),
    (".confab.v1.Frame.priority", "String::is_empty"),
    (".confab.v1.Frame.online_count", "Option::is_none"),
    (".confab.v1.Frame.vendor", "Option::is_none"),
    (".confab.v1.Frame.push_token", "Option::is_none"),
    (".confab.v1.Frame.bundle", "Option::is_none"),
    (".confab.v1.Frame.locale", "Option::is_none"),
    (".confab.v1.Frame.background", "Option::is_none"),
    (".confab.v1.Frame.muted", "Option::is_none"),
    (".confab.v1.Frame.dnd_start", "Option::is_none"),
    (".confab.v1.Frame.dnd_end", "Option::is_none"),
    (".confab.v1.Frame.tz_offset", "Option::is_none"),
    (".confab.v1.Frame.silent", "Option::is_none"),
    (".confab.v1.Frame.mentions", "Vec::is_empty"),
    (".confab.v1.Frame.mention_all", "Option::is_none"),
    (".confab.v1.Frame.approve", "Option::is_none"),
    (".confab.v1.Frame.group_requests", "Vec::is_empty"),
];
