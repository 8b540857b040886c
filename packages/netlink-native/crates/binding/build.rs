// napi-build sets the linker flags a Node.js addon needs (symbols resolved by node at load time).
fn main() {
    napi_build::setup();
}
