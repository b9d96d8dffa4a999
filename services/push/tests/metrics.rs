//! Every send, whatever its outcome, records its latency in
//! `confab_push_provider_seconds{vendor}`.

mod fake;

use std::sync::{Arc, Mutex};

use confab_push::{Credentials, Outcome, build_provider};
use fake::{Fake, TestCa, endpoints, message, reply};
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};
use serde_json::{Value, json};

type Records = Arc<Mutex<Vec<(String, Vec<(String, String)>, f64)>>>;

#[derive(Default)]
struct TestRecorder {
    records: Records,
}

struct TestHistogram {
    key: Key,
    records: Records,
}

impl HistogramFn for TestHistogram {
    fn record(&self, value: f64) {
        let labels = self
            .key
            .labels()
            .map(|l| (l.key().to_string(), l.value().to_string()))
            .collect();
        self.records
            .lock()
            .unwrap()
            .push((self.key.name().to_string(), labels, value));
    }
}

impl Recorder for TestRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn register_counter(&self, _: &Key, _: &Metadata<'_>) -> Counter {
        Counter::noop()
    }
    fn register_gauge(&self, _: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::noop()
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(Arc::new(TestHistogram {
            key: key.clone(),
            records: self.records.clone(),
        }))
    }
}

#[test]
fn every_send_records_provider_latency_by_vendor() {
    let recorder = TestRecorder::default();
    metrics::with_local_recorder(&recorder, || {
        // A current-thread runtime keeps every send on this thread, where
        // the local recorder is installed.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let ca = TestCa::new();
            let fake = Fake::start(&ca, |seen| {
                if seen.path == "/3/device/dead" {
                    reply(410, json!({"reason": "Unregistered"}))
                } else {
                    reply(200, Value::Null)
                }
            })
            .await;
            let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
            let creds = Credentials::Apns {
                key_p8: key.serialize_pem(),
                key_id: "ABC123DEFG".into(),
                team_id: "TEAM123456".into(),
                topic: "com.example.chat".into(),
                sandbox: false,
            };
            let p = build_provider(&creds, &endpoints(&ca, &fake.url)).unwrap();
            assert_eq!(p.send(&message("00ff")).await, Outcome::Sent);
            assert!(matches!(
                p.send(&message("dead")).await,
                Outcome::DeadToken { .. }
            ));
        });
    });
    let records = recorder.records.lock().unwrap().clone();
    assert_eq!(records.len(), 2, "{records:?}");
    for (name, labels, seconds) in records {
        assert_eq!(name, "confab_push_provider_seconds");
        assert_eq!(labels, vec![("vendor".to_string(), "apns".to_string())]);
        assert!(seconds > 0.0 && seconds < 10.0, "{seconds}");
    }
}
