//! `protoc-gen-stella-rust`: a local buf plugin that turns the Stella Orchestrator protos into
//! Rust (prost messages + tonic clients) through `tonic-prost-build`.
//!
//! buf parses the protos and hands this plugin a `CodeGeneratorRequest` on stdin, so no
//! protoc is needed anywhere. The plugin runs `tonic-prost-build` on the request's file
//! descriptors into a temporary directory and answers with one `CodeGeneratorResponse.File`
//! per Rust module it wrote (e.g. `stella.orchestrator.v1.rs`). Well-known types map to
//! `prost-types`, so only our packages are emitted. Output is deterministic: same protos,
//! same bytes (the freshness check regenerates and diffs).

use std::io::{Read, Write};

use prost::Message;
use prost_types::FileDescriptorSet;
use prost_types::compiler::code_generator_response::{Feature, File};
use prost_types::compiler::{CodeGeneratorRequest, CodeGeneratorResponse};

fn generate(request: CodeGeneratorRequest) -> Result<Vec<File>, String> {
    let out = tempfile::tempdir().map_err(|e| format!("temp dir: {e}"))?;
    let fds = FileDescriptorSet {
        file: request.proto_file,
    };
    tonic_prost_build::configure()
        .build_server(false) // workers are clients only; keeps the SDK's dependency tree small
        .build_transport(true)
        .emit_rerun_if_changed(false)
        .out_dir(out.path())
        .compile_fds(fds)
        .map_err(|e| format!("tonic-prost-build: {e}"))?;
    let mut names: Vec<_> = std::fs::read_dir(out.path())
        .map_err(|e| format!("read output: {e}"))?
        .filter_map(|entry| {
            entry
                .ok()
                .map(|e| e.file_name().to_string_lossy().into_owned())
        })
        .filter(|name| name.ends_with(".rs"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let content = std::fs::read_to_string(out.path().join(&name))
                .map_err(|e| format!("read {name}: {e}"))?;
            Ok(File {
                name: Some(name),
                content: Some(content),
                ..File::default()
            })
        })
        .collect()
}

fn main() {
    let mut input = Vec::new();
    std::io::stdin()
        .read_to_end(&mut input)
        .expect("read CodeGeneratorRequest from stdin");
    let request =
        CodeGeneratorRequest::decode(input.as_slice()).expect("decode CodeGeneratorRequest");
    let response = match generate(request) {
        Ok(file) => CodeGeneratorResponse {
            supported_features: Some(Feature::Proto3Optional as u64),
            file,
            ..CodeGeneratorResponse::default()
        },
        Err(error) => CodeGeneratorResponse {
            error: Some(error),
            ..CodeGeneratorResponse::default()
        },
    };
    std::io::stdout()
        .write_all(&response.encode_to_vec())
        .expect("write CodeGeneratorResponse to stdout");
}
