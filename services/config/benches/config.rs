//! Hot functions of the config on the send and login paths: the word filter
//! (every text message), gray-rule routing (every split-gateway request) and
//! the key lookup (every login).

use confab_config::gray::{GrayRule, Subject, choose_release};
use confab_config::words::{WordAction, WordFilter, WordRule};
use confab_config::{AppConfig, AppStatus, Compiled, KeyConfig, Snapshot};
use criterion::{Criterion, black_box, criterion_group, criterion_main};

fn words(c: &mut Criterion) {
    let rules: Vec<WordRule> = (0..10_000)
        .map(|i| WordRule {
            word: format!("badword{i}"),
            action: if i % 2 == 0 {
                WordAction::Block
            } else {
                WordAction::Mask
            },
        })
        .chain(["法轮", "傻逼"].iter().map(|w| WordRule {
            word: (*w).into(),
            action: WordAction::Mask,
        }))
        .collect();
    let filter = WordFilter::new(&rules);
    let clean =
        "Hey, are we still on for dinner tonight? I booked the place near the station at 7.";
    let masked = "Hey, are we still on for dinner tonight? 你是傻逼 I booked the place at 7.";
    c.bench_function("words/clean_80_chars_10k_words", |b| {
        b.iter(|| filter.check(black_box(clean)))
    });
    c.bench_function("words/masked_80_chars_10k_words", |b| {
        b.iter(|| filter.check(black_box(masked)))
    });
}

fn gray(c: &mut Criterion) {
    let rules: Vec<GrayRule> = (0..20)
        .map(|i| GrayRule {
            rule_id: format!("r{i}"),
            release: "canary".into(),
            tenant_id: None,
            app_id: Some(format!("app_{i}")),
            percent: 30,
            platforms: vec![],
            min_client_version: None,
            priority: i,
        })
        .collect();
    let who = Subject {
        tenant_id: "t1",
        app_id: "app_19",
        user_id: "user-123456",
        platform: "ios",
        client_version: Some("2.3.1"),
    };
    c.bench_function("gray/choose_release_20_rules", |b| {
        b.iter(|| choose_release(black_box(&rules), black_box(&who)))
    });
}

fn keys(c: &mut Criterion) {
    let mut snapshot = Snapshot::default();
    for i in 0..10_000 {
        let id = format!("app_{i}");
        snapshot.apps.insert(
            id.clone(),
            AppConfig {
                app_id: id,
                tenant_id: "t".into(),
                name: "a".into(),
                status: AppStatus::Active,
                settings: Default::default(),
                keys: vec![KeyConfig {
                    key_id: format!("key_{i}"),
                    secret: "s".into(),
                    created_at: 0,
                    revoked_at: None,
                }],
                words: vec![],
                webhook: None,
            },
        );
    }
    let compiled = Compiled::new(snapshot);
    c.bench_function("config/key_lookup_10k_apps", |b| {
        b.iter(|| compiled.key(black_box("key_5000")))
    });
}

criterion_group!(benches, words, gray, keys);
criterion_main!(benches);
