//! The libraries a module needs are judged like the module: attacks on
//! DT_NEEDED, RUNPATH and the environment, with real C modules compiled
//! here.

#![allow(clippy::panic, reason = "a failed expectation is a test failure")]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use modhash::policy::{HashEvidence, Policy};
use modhash::{Anchor, Digest, Manifest, Profile};
use modhash_load::deps::MAX_DEPTH;
use modhash_load::{Action, DigestSet, HostPolicy, Judge, LoadError, Loader, Verdict};

fn digest(path: &Path) -> Digest {
    Profile::ElfImage
        .digest(&fs::read(path).expect("read"))
        .expect("digest")
}

fn loader(trusted: &[&Path], action: Action) -> Loader<DigestSet> {
    Loader::new(DigestSet::new(
        Profile::ElfImage,
        trusted.iter().map(|p| digest(p)),
        action,
    ))
}

/// The helper's name for the test using `dir`: glibc binds a library name
/// once per process, and the tests share one process, so each test's
/// helper has a name of its own.
fn helper_stem(dir: &Path) -> String {
    let unique: String = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .collect();
    format!("helper{unique}")
}

/// lib<stem>.so (DT_SONAME the same, answering `marker`) in `dir`.
fn helper(dir: &Path, marker: &str, extra: &[&str]) -> PathBuf {
    let name = format!("lib{}.so", helper_stem(dir));
    let define = format!("-DMARKER=\"{marker}\"");
    let soname = format!("-Wl,-soname,{name}");
    let mut args = vec![define.as_str(), soname.as_str()];
    args.extend_from_slice(extra);
    common::cc(&dir.join(name), "helper.c", &args)
}

/// A module in `dir` needing the helper from `dir`; `extra` says how it
/// is found (`-Wl,-rpath,...`).
fn module(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let lib_dir = format!("-L{}", dir.display());
    let lib = format!("-l{}", helper_stem(dir));
    let mut args = vec![lib_dir.as_str(), lib.as_str()];
    args.extend_from_slice(extra);
    common::cc(&dir.join(name), "module.c", &args)
}

/// A file a decoy's constructor creates; it must never exist.
fn marker_define(dir: &Path, name: &str) -> (PathBuf, String) {
    let file = dir.join(name);
    let define = format!("-DMARKER_FILE=\"{}\"", file.display());
    (file, define)
}

/// The verdict, naming a dependency, on which `loader` refuses `module`.
fn refusal(loader: &Loader<impl Judge>, module: &Path) -> String {
    match loader.load(module) {
        Err(LoadError::Rejected { verdict, .. } | LoadError::Unpinned { verdict, .. }) => {
            verdict.to_string()
        }
        Err(other) => panic!("expected a refusal naming a dependency, got: {other}"),
        Ok(_) => panic!("{} loaded", module.display()),
    }
}

/// DT_RUNPATH (`--enable-new-dtags`) or DT_RPATH (`--disable-new-dtags`),
/// both `$ORIGIN`.
#[test]
fn a_dependency_found_through_an_origin_run_path_is_judged_and_loaded() {
    for dtags in ["--enable-new-dtags", "--disable-new-dtags"] {
        let dir = tempfile::tempdir().expect("tempdir");
        let helper = helper(dir.path(), "helper A", &[]);
        let run_path = format!("-Wl,{dtags},-rpath,$ORIGIN");
        let module = module(dir.path(), "libplugin.so", &[&run_path]);
        let loader = loader(&[&helper, &module], Action::Reject);
        let loaded = loader.load(&module).expect(dtags);
        assert_eq!(loaded.trust(), &Verdict::TrustedByHash);
        assert_eq!(loaded.call(0, b"").expect("call"), b"helper A");
        let judged = loader.judge(&module).expect("judge");
        let deps = judged.dependencies();
        let names: Vec<&str> = deps.found.iter().map(|d| d.name.as_str()).collect();
        let name = format!("lib{}.so", helper_stem(dir.path()));
        assert!(names.contains(&name.as_str()), "{dtags}: {names:?}");
    }
}

#[test]
fn a_swapped_dependency_is_refused_and_its_code_never_runs() {
    let dir = tempfile::tempdir().expect("tempdir");
    let helper_a = helper(dir.path(), "helper A", &[]);
    let trusted_helper = digest(&helper_a);
    let module = module(dir.path(), "libplugin.so", &["-Wl,-rpath,$ORIGIN"]);
    // The attacker replaces the helper with a library of their own.
    let (ran, define) = marker_define(dir.path(), "decoy-ran");
    helper(dir.path(), "decoy", &[&define]);
    let loader = Loader::new(DigestSet::new(
        Profile::ElfImage,
        [trusted_helper, digest(&module)],
        Action::Reject,
    ));
    let verdict = refusal(&loader, &module);
    let text = verdict;
    let expected = format!(
        "untrusted: dependency lib{}.so: not in manifest",
        helper_stem(dir.path())
    );
    assert!(text.starts_with(&expected), "{text}");
    assert!(!ran.exists(), "the swapped helper's constructor ran");
}

#[test]
fn under_taint_an_untrusted_dependency_loads_from_its_judged_image_and_taints() {
    let dir = tempfile::tempdir().expect("tempdir");
    helper(dir.path(), "helper B", &[]);
    let module = module(dir.path(), "libplugin.so", &["-Wl,-rpath,$ORIGIN"]);
    let loader = loader(&[&module], Action::Taint);
    let loaded = loader.load(&module).expect("tainted load");
    assert!(!loaded.trust().is_trusted());
    assert_eq!(loaded.call(0, b"").expect("call"), b"helper B");
    assert_eq!(loader.tainted().len(), 1);
    assert!(modhash_load::process_tainted());
}

#[test]
fn a_dependency_without_a_matching_soname_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No -soname: the module's DT_NEEDED is the file name, but glibc could
    // not match the pre-loaded library to it and would search the disk.
    let name = format!("lib{}.so", helper_stem(dir.path()));
    let helper = common::cc(&dir.path().join(name), "helper.c", &[]);
    let module = module(dir.path(), "libplugin.so", &["-Wl,-rpath,$ORIGIN"]);
    let verdict = refusal(&loader(&[&helper, &module], Action::Taint), &module);
    assert!(verdict.contains("has DT_SONAME none"), "{verdict}");
}

#[test]
fn a_needed_path_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let helper = common::cc(&dir.path().join("libhelper.so"), "helper.c", &[]);
    // Linked by path, without a soname: DT_NEEDED is the absolute path.
    let helper_arg = helper.display().to_string();
    let module = common::cc(&dir.path().join("libplugin.so"), "module.c", &[&helper_arg]);
    let verdict = refusal(&loader(&[&helper, &module], Action::Taint), &module);
    assert!(verdict.contains("is a path"), "{verdict}");
}

/// `dir/lib<name>.so` built from `source`, with that DT_SONAME and, if
/// given, needing `lib<needs>.so` from `dir` through `$ORIGIN`.
fn needing(dir: &Path, name: &str, source: &str, needs: Option<&str>) -> PathBuf {
    let file = format!("lib{name}.so");
    let soname = format!("-Wl,-soname,{file}");
    let lib_dir = format!("-L{}", dir.display());
    let lib = needs.map(|needs| format!("-l{needs}"));
    let mut args = vec![
        soname.as_str(),
        "-DNO_HELPER",
        "-Wl,-rpath,$ORIGIN",
        "-Wl,--no-as-needed",
    ];
    if let Some(lib) = &lib {
        args.extend([lib_dir.as_str(), lib.as_str()]);
    }
    common::cc(&dir.join(file), source, &args)
}

#[test]
fn a_dependency_cycle_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    // b needs a needs b: build b empty first so a can link against it.
    let b = needing(d, "cycb", "helper.c", None);
    let a = needing(d, "cyca", "helper.c", Some("cycb"));
    needing(d, "cycb", "helper.c", Some("cyca"));
    let module = needing(d, "plugin", "module.c", Some("cyca"));
    let loader = loader(&[&a, &b, &module], Action::Taint);
    let verdict = refusal(&loader, &module);
    assert!(
        verdict
            .to_string()
            .contains("dependency cycle libcyca.so -> libcycb.so -> libcyca.so"),
        "{verdict}"
    );
}

#[test]
fn a_chain_deeper_than_the_bound_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let mut trusted: Vec<PathBuf> = (0..=MAX_DEPTH + 1)
        .rev()
        .map(|level| {
            let next = (level <= MAX_DEPTH).then(|| format!("chain{}", level + 1));
            needing(d, &format!("chain{level}"), "helper.c", next.as_deref())
        })
        .collect();
    trusted.push(needing(d, "plugin", "module.c", Some("chain0")));
    let module = trusted.last().expect("module").clone();
    let trusted: Vec<&Path> = trusted.iter().map(PathBuf::as_path).collect();
    let verdict = refusal(&loader(&trusted, Action::Taint), &module);
    assert!(verdict.contains("levels of libraries"), "{verdict}");
}

#[test]
fn a_system_directory_others_can_write_is_not_a_system_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let system = dir.path().join("system");
    fs::create_dir(&system).expect("mkdir");
    common::cc(
        &system.join("libhelper.so"),
        "helper.c",
        &["-Wl,-soname,libhelper.so"],
    );
    let lib_dir = format!("-L{}", system.display());
    let module = common::cc(
        &dir.path().join("libplugin.so"),
        "module.c",
        &[&lib_dir, "-lhelper"],
    );
    let manifest = Manifest::new(
        Profile::ElfImage,
        [("libplugin.so".to_owned(), digest(&module))],
    )
    .expect("manifest");
    let anchor = Anchor::parse(&Anchor::sealed_record(&manifest)).expect("anchor");
    let policy = Policy::new(anchor, HashEvidence::Manifest(manifest));
    let loader =
        Loader::new(HostPolicy::new(policy, Action::Taint).with_system_dirs(vec![system.clone()]));
    // The temporary directory lies under the world-writable /tmp.
    let verdict = refusal(&loader, &module);
    assert!(verdict.contains("writable by group or others"), "{verdict}");
}

#[test]
fn loader_extensions_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    helper(dir.path(), "helper A", &[]);
    for (option, tag) in [
        ("-Wl,--depaudit,libaudit.so", "DT_DEPAUDIT"),
        ("-Wl,--audit,libaudit.so", "DT_AUDIT"),
        ("-Wl,-f,libfilter.so", "DT_AUXILIARY"),
    ] {
        let module = module(dir.path(), "libplugin.so", &["-Wl,-rpath,$ORIGIN", option]);
        let verdict = refusal(&loader(&[&module], Action::Taint), &module);
        assert!(verdict.contains(tag), "{option}: {verdict}");
    }
}

#[test]
fn a_constructor_that_runs_before_a_failure_still_taints() {
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, define) in [("no-abi", "-DNO_ABI"), ("fail-create", "-DFAIL_CREATE")] {
        let (ran, marker) = marker_define(dir.path(), &format!("{name}-ran"));
        let module = common::cc(
            &dir.path().join(format!("lib{name}.so")),
            "module.c",
            &["-DNO_HELPER", define, &marker],
        );
        let loader = loader(&[], Action::Taint);
        let error = loader.load(&module).expect_err("the module fails");
        assert!(matches!(error, LoadError::Open(_)), "{name}: {error}");
        assert!(ran.exists(), "{name}: its constructor did not run");
        let tainted = loader.tainted();
        assert_eq!(tainted.len(), 1, "{name}: taint not recorded");
        assert_eq!(tainted[0].path, module);
        assert!(modhash_load::process_tainted());
    }
}

/// Environment of the child process in
/// [`the_environment_never_chooses_a_library`].
const CHILD: &str = "MODHASH_TEST_DEPS_CHILD";

#[test]
fn the_environment_never_chooses_a_library() {
    let dir = tempfile::tempdir().expect("tempdir");
    let d = dir.path();
    let helper = helper(d, "helper A", &[]);
    // The module needs libhelper.so ($ORIGIN) and libz.so.1 (a system
    // library this test process has not loaded).
    let module = module(
        d,
        "libplugin.so",
        &["-Wl,-rpath,$ORIGIN", "-Wl,--no-as-needed", "-l:libz.so.1"],
    );
    // Decoys of both, first on LD_LIBRARY_PATH.
    let decoys = d.join("decoys");
    let helper_name = format!("lib{}.so", helper_stem(d));
    let helper_soname = format!("-Wl,-soname,{helper_name}");
    fs::create_dir(&decoys).expect("mkdir");
    let (helper_ran, helper_marker) = marker_define(d, "decoy-helper-ran");
    let (zlib_ran, zlib_marker) = marker_define(d, "decoy-zlib-ran");
    common::cc(
        &decoys.join(&helper_name),
        "helper.c",
        &[&helper_soname, &helper_marker],
    );
    common::cc(
        &decoys.join("libz.so.1"),
        "helper.c",
        &["-Wl,-soname,libz.so.1", &zlib_marker],
    );

    let output = Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "child_loads_a_module_as_told",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LD_LIBRARY_PATH", &decoys)
        .env(
            CHILD,
            format!(
                "{}\n{}\n{}",
                module.display(),
                digest(&module),
                digest(&helper)
            ),
        )
        .output()
        .expect("run the child");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "child failed: {stderr}");
    assert!(
        String::from_utf8_lossy(&output.stdout).contains("child: loaded, helper A"),
        "{stderr}"
    );
    assert!(!helper_ran.exists(), "the decoy libhelper.so ran");
    assert!(!zlib_ran.exists(), "the decoy libz.so.1 ran");
}

/// Runs only as the child of [`the_environment_never_chooses_a_library`].
#[test]
fn child_loads_a_module_as_told() {
    let Some(spec) = std::env::var_os(CHILD) else {
        return;
    };
    let spec = spec.into_string().expect("utf-8");
    let mut lines = spec.lines();
    let module = PathBuf::from(lines.next().expect("module"));
    let digests: Vec<Digest> = lines.map(|l| l.parse().expect("digest")).collect();
    let loader = Loader::new(DigestSet::new(Profile::ElfImage, digests, Action::Reject));
    let judged = loader.judge(&module).expect("judge");
    let deps = judged.dependencies();
    for dep in &deps.found {
        eprintln!("child: {dep}");
    }
    let loaded = loader
        .load(&module)
        .expect("load under a hostile LD_LIBRARY_PATH");
    let answer = loaded.call(0, b"").expect("call");
    println!("child: loaded, {}", String::from_utf8_lossy(&answer));
}

/// An isolated module's libraries are left to the dynamic loader inside the
/// worker's sandbox: `$ORIGIN` names `/proc/self/fd` there and the
/// module's directory is not readable, so its helper is not found; the
/// host never loads it.
#[test]
fn an_isolated_module_gets_no_library_from_beside_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (ran, define) = marker_define(dir.path(), "helper-ran");
    helper(dir.path(), "helper A", &[&define]);
    let module = module(dir.path(), "libplugin.so", &["-Wl,-rpath,$ORIGIN"]);
    let mut worker = modhash_load::isolated::WorkerConfig::default();
    worker.worker = Some(common::worker().into());
    let loader = loader(&[], Action::Isolate).with_worker_config(worker);
    match loader.load(&module) {
        Err(LoadError::Isolation { source, .. }) => {
            let helper = format!("lib{}.so: cannot open", helper_stem(dir.path()));
            assert!(source.to_string().contains(&helper), "{source}");
        }
        other => panic!("expected the worker to fail loading the module: {other:?}"),
    }
    assert!(!ran.exists(), "the helper's constructor ran");
}
