//! Per-frame codec costs: every frame in and out of a gateway pays these.
//! `cargo bench -p confab-proto`

use confab_proto::{Encoding, Frame, Peer, decode, encode, ops};
use criterion::{Criterion, black_box, criterion_group, criterion_main};

fn message_push() -> Frame {
    Frame {
        op: ops::MESSAGE.into(),
        inbox_seq: Some(123_456),
        conv_id: "p2p:alice:bob".into(),
        seq: Some(4242),
        msg_id: "01KAZ3Q8B1R6W7Y0C5E9N2M4TX".into(),
        from: "alice".into(),
        to: Some(Peer {
            kind: "user".into(),
            id: "bob".into(),
        }),
        body: r#"{"type":"text","text":"see you at the station at seven, platform 4"}"#.into(),
        ts: Some(1_764_066_000_000),
        client_msg_id: "c-000123".into(),
        ..Default::default()
    }
}

fn send_request() -> &'static [u8] {
    br#"{"op":"send","rid":17,"to":{"kind":"user","id":"bob"},"client_msg_id":"c-000123","body":{"type":"text","text":"see you at the station at seven, platform 4"}}"#
}

fn codec(c: &mut Criterion) {
    let push = message_push();
    let json = encode(Encoding::Json, &push);
    let proto = encode(Encoding::Proto, &push);
    c.bench_function("encode message push / json", |b| {
        b.iter(|| encode(Encoding::Json, black_box(&push)))
    });
    c.bench_function("encode message push / protobuf", |b| {
        b.iter(|| encode(Encoding::Proto, black_box(&push)))
    });
    c.bench_function("decode message push / json", |b| {
        b.iter(|| decode(Encoding::Json, black_box(&json)))
    });
    c.bench_function("decode message push / protobuf", |b| {
        b.iter(|| decode(Encoding::Proto, black_box(&proto)))
    });
    c.bench_function("decode send request / json", |b| {
        b.iter(|| decode(Encoding::Json, black_box(send_request())))
    });
}

criterion_group!(benches, codec);
criterion_main!(benches);
