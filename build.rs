//! Re-embed migrations when their SQL changes (`sqlx::migrate!` reads them at compile time).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
    println!("cargo:rerun-if-changed=openapi.yaml");
}
