//! External programs the PDF and image readers lean on (poppler's `pdftotext`,
//! Tesseract): run with a time limit, their absence and their failures turned into
//! one-line [`LoadError`]s that name the file and the Debian package to install.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::load::LoadError;

/// A program and where it comes from, for the "not installed" message.
#[derive(Debug, Clone, Copy)]
pub struct Tool {
    pub program: &'static str,
    /// The Debian package(s) that install it, as `apt-get install` takes them.
    pub package: &'static str,
}

pub const PDFINFO: Tool = Tool {
    program: "pdfinfo",
    package: "poppler-utils",
};
pub const PDFTOTEXT: Tool = Tool {
    program: "pdftotext",
    package: "poppler-utils",
};
pub const PDFTOPPM: Tool = Tool {
    program: "pdftoppm",
    package: "poppler-utils",
};
pub const TESSERACT: Tool = Tool {
    program: "tesseract",
    package: "tesseract-ocr tesseract-ocr-ara",
};

/// One call: the program, its arguments, what it reads on stdin, how long it may take.
pub struct Call<'a> {
    pub tool: Tool,
    pub args: Vec<OsString>,
    pub stdin: Option<&'a [u8]>,
    pub limit: Duration,
}

impl<'a> Call<'a> {
    pub fn new(tool: Tool) -> Self {
        Self {
            tool,
            args: Vec::new(),
            stdin: None,
            limit: Duration::from_secs(60),
        }
    }

    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Self {
        self.args.push(arg.as_ref().to_os_string());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: AsRef<OsStr>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_os_string()));
        self
    }

    pub fn stdin(mut self, bytes: &'a [u8]) -> Self {
        self.stdin = Some(bytes);
        self
    }

    pub fn limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }
}

/// What a program that ran to its end left behind, whatever its exit status.
#[derive(Debug)]
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Finished {
    /// The first non-empty line of stderr: poppler and Tesseract put the reason there.
    pub fn first_error_line(&self) -> String {
        String::from_utf8_lossy(&self.stderr)
            .lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .unwrap_or("no message")
            .to_string()
    }
}

/// Runs the call and returns its stdout; a failure is an unreadable `path` with the
/// program's own first line of complaint and `fix` as what to do.
pub fn run(path: &str, format: &'static str, call: Call, fix: &str) -> Result<Vec<u8>, LoadError> {
    let program = call.tool.program;
    let finished = output(path, format, call)?;
    if !finished.status.success() {
        let reason = format!("{program} failed ({})", finished.first_error_line());
        return Err(LoadError::unreadable(path, reason, fix));
    }
    Ok(finished.stdout)
}

/// Runs the call to its end (or its time limit), for callers that read the exit status
/// themselves: a program that is not installed is [`LoadError::MissingTool`].
pub fn output(path: &str, format: &'static str, call: Call) -> Result<Finished, LoadError> {
    let tool = call.tool;
    let mut child = Command::new(tool.program)
        .args(&call.args)
        .stdin(if call.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| spawn_error(path, format, tool, e))?;
    // stdin is written and both pipes drained on their own threads: a program that
    // fills one pipe while we block on another would otherwise never finish.
    let feeder = call.stdin.map(|bytes| feed(&mut child, bytes.to_vec()));
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let status = wait_within(&mut child, call.limit);
    if let Some(feeder) = feeder {
        // A program may exit without reading all its input; that is its business.
        let _ = feeder.join();
    }
    let stdout = stdout.join().unwrap_or_default();
    let stderr = stderr.join().unwrap_or_default();
    match status {
        Some(status) => Ok(Finished {
            status,
            stdout,
            stderr,
        }),
        None => Err(LoadError::unreadable(
            path,
            format!(
                "{} took longer than {} s",
                tool.program,
                call.limit.as_secs_f64()
            ),
            "split the document into smaller files, or check that it is not damaged",
        )),
    }
}

fn spawn_error(path: &str, format: &'static str, tool: Tool, e: std::io::Error) -> LoadError {
    if e.kind() == std::io::ErrorKind::NotFound {
        LoadError::MissingTool {
            path: path.to_string(),
            format,
            tool: tool.program,
            package: tool.package,
        }
    } else {
        LoadError::unreadable(
            path,
            format!("cannot start {} ({e})", tool.program),
            format!(
                "check that {} runs (it comes with `apt-get install {}`)",
                tool.program, tool.package
            ),
        )
    }
}

fn feed(child: &mut Child, bytes: Vec<u8>) -> JoinHandle<()> {
    let stdin = child.stdin.take();
    thread::spawn(move || {
        if let Some(mut stdin) = stdin {
            let _ = stdin.write_all(&bytes);
        }
    })
}

fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut out = Vec::new();
        if let Some(mut pipe) = pipe {
            let _ = pipe.read_to_end(&mut out);
        }
        out
    })
}

/// The exit status, or `None` when the limit passed first (the child is then killed,
/// so that its pipes close and the reader threads end).
fn wait_within(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if start.elapsed() < limit => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAT: Tool = Tool {
        program: "cat",
        package: "coreutils",
    };

    #[test]
    fn stdin_comes_back_on_stdout() {
        let big = vec![b'x'; 1 << 20];
        let out = run("a.pdf", "pdf", Call::new(CAT).arg("-").stdin(&big), "fix").expect("cat");
        assert_eq!(out.len(), big.len());
    }

    #[test]
    fn a_missing_program_names_its_package() {
        let tool = Tool {
            program: "tarjama-no-such-program",
            package: "some-package",
        };
        let err = run("doc.pdf", "pdf", Call::new(tool), "fix").unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, LoadError::MissingTool { .. }));
        assert!(message.starts_with("doc.pdf: reading pdf needs `tarjama-no-such-program`"));
        assert!(
            message.contains("apt-get install some-package"),
            "{message}"
        );
    }

    #[test]
    fn a_failure_gives_the_first_line_of_stderr() {
        let sh = Tool {
            program: "sh",
            package: "dash",
        };
        let script = "echo; echo 'Syntax Error: bad xref' >&2; echo second >&2; exit 3";
        let err = run(
            "d.pdf",
            "pdf",
            Call::new(sh).args(["-c", script]),
            "re-save it",
        )
        .unwrap_err();
        let message = err.to_string();
        assert_eq!(
            message,
            "d.pdf: sh failed (Syntax Error: bad xref); re-save it"
        );
    }

    #[test]
    fn a_program_past_its_limit_is_stopped() {
        let sleep = Tool {
            program: "sleep",
            package: "coreutils",
        };
        let start = Instant::now();
        let call = Call::new(sleep).arg("5").limit(Duration::from_millis(200));
        let err = run("slow.pdf", "pdf", call, "fix").unwrap_err();
        assert!(start.elapsed() < Duration::from_secs(3));
        assert!(
            err.to_string().contains("sleep took longer than 0.2 s"),
            "{err}"
        );
    }
}
