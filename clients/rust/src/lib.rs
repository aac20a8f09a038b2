pub mod proto {
    include!("gen/stella.orchestrator.v1.rs");
}
