//! The shared SDK vectors (tests/vectors/*.json): the Python and Go SDKs check the same
//! files and must agree byte for byte.

use std::path::PathBuf;

use serde_json::Value;
use stella_orchestrator_worker::proto::ErrorClass;
use stella_orchestrator_worker::{
    Backoff, ERROR_CLASSES, JobError, LEASE_LOST_REASONS, RpcError, SplitMix64, bytes_digest,
    canonical_json, error_class_enum, error_class_label, json_digest,
};

fn load(name: &str) -> Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/vectors")
        .join(name);
    let text =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_json::from_str(&text).expect("vectors are JSON")
}

fn cases(doc: &Value) -> &Vec<Value> {
    let cases = doc["cases"].as_array().expect("cases");
    assert!(!cases.is_empty(), "no cases");
    cases
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key} is not a string"))
}

#[test]
fn artifact_digests() {
    let doc = load("artifact_digests.json");
    for case in cases(&doc) {
        let data = match case.get("repeat") {
            Some(r) => {
                vec![r["byte"].as_u64().unwrap() as u8; r["count"].as_u64().unwrap() as usize]
            }
            None => hex::decode(str_of(case, "data_hex")).expect("hex"),
        };
        assert_eq!(
            data.len() as u64,
            case["size_bytes"].as_u64().unwrap(),
            "{}",
            case["name"]
        );
        assert_eq!(
            bytes_digest(&data),
            str_of(case, "digest"),
            "{}",
            case["name"]
        );
    }
}

#[test]
fn canonical_json_vectors() {
    let doc = load("canonical_json.json");
    for case in cases(&doc) {
        let expected = str_of(case, "canonical");
        // The canonical form is a fixed point.
        for text in [str_of(case, "input"), expected] {
            let value: Value = serde_json::from_str(text).expect("input is JSON");
            let got = canonical_json(&value).expect("canonical");
            assert_eq!(
                String::from_utf8(got).unwrap(),
                expected,
                "{}",
                case["name"]
            );
            assert_eq!(
                json_digest(&value).unwrap(),
                str_of(case, "digest"),
                "{}",
                case["name"]
            );
        }
    }
}

#[test]
fn backoff_schedules() {
    let doc = load("backoff.json");
    let reference = &doc["splitmix64_reference"];
    let mut generator = SplitMix64::new(str_of(reference, "seed").parse().unwrap());
    for want in reference["outputs"].as_array().unwrap() {
        assert_eq!(generator.next_u64().to_string(), want.as_str().unwrap());
    }
    for case in cases(&doc) {
        let seed: u64 = str_of(case, "seed").parse().unwrap();
        let mut backoff = Backoff::with(
            case["initial_s"].as_f64().unwrap(),
            case["cap_s"].as_f64().unwrap(),
            case["multiplier"].as_f64().unwrap(),
            SplitMix64::new(seed),
        );
        for (n, want) in case["ceilings"].as_array().unwrap().iter().enumerate() {
            assert_eq!(
                backoff.ceiling(n as u32),
                want.as_f64().unwrap(),
                "seed {seed} ceiling {n}"
            );
        }
        let bits = case["delay_bits"].as_array().unwrap();
        for (i, text) in case["delays"].as_array().unwrap().iter().enumerate() {
            let got = backoff.next_seconds();
            assert_eq!(
                format!("{:016x}", got.to_bits()),
                bits[i].as_str().unwrap(),
                "seed {seed} delay {i}"
            );
            assert_eq!(
                got,
                text.as_str().unwrap().parse::<f64>().unwrap(),
                "seed {seed} delay {i}"
            );
        }
    }
}

#[test]
fn error_classes_and_failures() {
    let doc = load("errors.json");
    let classes = doc["error_classes"].as_object().unwrap();
    assert_eq!(classes.len(), ERROR_CLASSES.len());
    for (label, entry) in classes {
        let value = error_class_enum(label).expect("known label");
        assert_eq!(
            value as i32 as u64,
            entry["number"].as_u64().unwrap(),
            "{label}"
        );
        assert_eq!(value.as_str_name(), str_of(entry, "enum"), "{label}");
        assert_eq!(error_class_label(value), label);
    }
    assert_eq!(error_class_label(ErrorClass::Unspecified), "other");
    for failure in doc["job_failures"].as_array().unwrap() {
        let made = match str_of(failure, "kind") {
            "upstream_throttled" => JobError::upstream_throttled("", None),
            "upstream_unavailable" => JobError::upstream_unavailable(""),
            "upstream_rejected" => JobError::upstream_rejected(""),
            "parse_error" => JobError::parse_error(""),
            "schema_mismatch" => JobError::schema_mismatch(""),
            "job_failure" => JobError::new("other", "", true),
            other => panic!("unknown failure kind {other}"),
        };
        assert_eq!(made.class, str_of(failure, "class"));
        assert_eq!(made.retryable, failure["retryable"].as_bool().unwrap());
    }
    let reasons: Vec<&str> = doc["lease_lost_reasons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert_eq!(reasons, LEASE_LOST_REASONS);
}

#[test]
fn status_code_kinds() {
    let doc = load("errors.json");
    for entry in doc["status_codes"].as_array().unwrap() {
        let code = tonic::Code::from_i32(entry["number"].as_i64().unwrap() as i32);
        let error = RpcError {
            code,
            message: String::new(),
            reason: str_of(entry, "reason").into(),
        };
        assert_eq!(
            error.kind().as_str(),
            str_of(entry, "kind"),
            "{}",
            entry["code"]
        );
        assert_eq!(
            error.retryable(),
            entry["reconnect"].as_bool().unwrap(),
            "{}",
            entry["code"]
        );
    }
}
