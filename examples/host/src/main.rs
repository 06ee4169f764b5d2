//! An example host, the way a program with plugins uses modhash: `modhash
//! seal` fills its anchor after its plugins are built, a vendor's key is
//! compiled in, and `Host` loads each plugin from a sealed memfd, in-process
//! if trusted, else as `--policy` says. `anchor` prints what it reads.

use std::error::Error;
use std::process::ExitCode;

use modhash::Anchor;
use modhash_load::Host;

const VENDOR_KEY: &[u8] = include_bytes!("../../vendor-key/vendor.key.pub");
const USAGE: &str = "usage: example-host anchor\n       example-host run --manifest M [--policy reject|isolate|taint] PLUGIN METHOD INPUT";

fn main() -> ExitCode {
    let anchor = modhash::anchor!(); // the host's one anchor slot
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.iter().map(String::as_str).collect::<Vec<_>>()[..] {
        ["anchor"] => {
            println!("{anchor}");
            Ok(ExitCode::SUCCESS)
        }
        ["run", "--manifest", m, "--policy", p, a, b, c] => run(anchor, [m, p, a, b, c]),
        ["run", "--manifest", m, a, b, c] => run(anchor, [m, "reject", a, b, c]),
        _ => Err(USAGE.into()),
    };
    result.unwrap_or_else(|error| {
        eprintln!("example-host: {error}");
        ExitCode::from(2)
    })
}

fn run(anchor: Anchor, [manifest, policy, plugin, method, input]: [&str; 5]) -> Outcome {
    let method: u32 = method.parse().map_err(|_| "METHOD must be a number")?;
    let host = Host::builder(anchor)
        .manifest_file(manifest)
        .trusted_key(VENDOR_KEY)
        .untrusted(policy.parse()?)
        .build()?;
    let module = host.load(plugin).map_err(|e| format!("{plugin}: {e}"))?;
    let place = match (module.is_isolated(), host.tainted().is_empty()) {
        (true, _) => "isolated worker",
        (false, true) => "in-process",
        (false, false) => "in-process, tainted",
    };
    println!("{plugin}: {}; {place}", module.trust());
    let call = format!("{}({method}, {input:?})", module.name());
    let output = module.call(method, input.as_bytes());
    match &output {
        Ok(out) => println!("{call} = {:?}", String::from_utf8_lossy(out)),
        Err(error) => println!("{call} failed: {error}"),
    }
    Ok(ExitCode::from(u8::from(output.is_err())))
}

type Outcome = Result<ExitCode, Box<dyn Error>>;
