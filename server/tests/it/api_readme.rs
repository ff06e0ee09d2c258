//! The README's API walk-through (check-out → return → wipe → verify) stays true: its `sh` block
//! is read from README.md and run line by line against a started server. The lines are plain
//! `VAR=…` assignments and `curl` calls, some piped into `jq`; this test interprets exactly that
//! subset (quotes, `$VAR` expansion, `$(…)`, curl's `-H -d -X -sSf`, jq's `-r -c` with paths and
//! `fromjson`) with an HTTP client, so it needs neither curl nor jq on the machine. Anything
//! outside the subset fails the test rather than being skipped.

use std::collections::HashMap;

use lending::testing::seed_basic;
use lending::{both_dbs, DeviceStatus};
use serde_json::Value;

use crate::spawn_app;

const README: &str = include_str!("../../../README.md");

/// The walk-through's shell block.
fn walkthrough() -> &'static str {
    let start = README.find("<!-- api-walkthrough:begin -->").expect("begin marker");
    let end = README.find("<!-- api-walkthrough:end -->").expect("end marker");
    let block = &README[start..end];
    let body = &block[block.find("```sh\n").expect("sh block") + 6..];
    &body[..body.rfind("```").expect("block end")]
}

#[derive(Debug, PartialEq)]
enum Tok {
    Word(String),
    Pipe,
    /// `$(` … `)`: the inner command's tokens.
    Sub(Vec<Tok>),
    End,
}

/// Splits shell text into words (quotes removed, variables expanded), pipes, command
/// substitutions and command ends.
fn lex(src: &mut std::iter::Peekable<std::str::Chars<'_>>, vars: &HashMap<String, String>, inner: bool) -> Vec<Tok> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let var = |src: &mut std::iter::Peekable<std::str::Chars<'_>>| {
        let braced = src.peek() == Some(&'{');
        if braced {
            src.next();
        }
        let mut name = String::new();
        while let Some(&c) = src.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                src.next();
            } else {
                break;
            }
        }
        if braced {
            assert_eq!(src.next(), Some('}'));
        }
        vars.get(&name).unwrap_or_else(|| panic!("${name} is not set")).clone()
    };
    while let Some(c) = src.next() {
        match c {
            '\\' if src.peek() == Some(&'\n') => {
                src.next();
                if let Some(w) = word.take() {
                    out.push(Tok::Word(w));
                }
            }
            ' ' | '\t' => {
                if let Some(w) = word.take() {
                    out.push(Tok::Word(w));
                }
            }
            '\n' => {
                if let Some(w) = word.take() {
                    out.push(Tok::Word(w));
                }
                out.push(Tok::End);
            }
            '#' if word.is_none() => {
                while src.peek().is_some_and(|c| *c != '\n') {
                    src.next();
                }
            }
            '|' => {
                if let Some(w) = word.take() {
                    out.push(Tok::Word(w));
                }
                out.push(Tok::Pipe);
            }
            ')' if inner => {
                if let Some(w) = word.take() {
                    out.push(Tok::Word(w));
                }
                return out;
            }
            '\'' => {
                let w = word.get_or_insert_with(String::new);
                for c in src.by_ref() {
                    if c == '\'' {
                        break;
                    }
                    w.push(c);
                }
            }
            '"' => {
                let w = word.get_or_insert_with(String::new);
                loop {
                    match src.next().expect("closing quote") {
                        '"' => break,
                        '\\' => {
                            let n = src.next().expect("escaped character");
                            if !matches!(n, '"' | '\\' | '$') {
                                w.push('\\');
                            }
                            w.push(n);
                        }
                        '$' => w.push_str(&var(src)),
                        c => w.push(c),
                    }
                }
            }
            '$' if src.peek() == Some(&'(') => {
                src.next();
                // `NAME=$(…)`: the assignment's word, then the substitution.
                if let Some(w) = word.take() {
                    out.push(Tok::Word(w));
                }
                out.push(Tok::Sub(lex(src, vars, true)));
            }
            '$' => word.get_or_insert_with(String::new).push_str(&var(src)),
            c => word.get_or_insert_with(String::new).push(c),
        }
    }
    assert!(!inner, "unclosed $(");
    if let Some(w) = word.take() {
        out.push(Tok::Word(w));
    }
    out
}

/// Runs one curl command; fails the test on a non-2xx answer (as `curl -f` would fail).
async fn curl(client: &reqwest::Client, args: &[String]) -> String {
    let (mut method, mut url, mut body, mut headers) = (None, None, None, Vec::new());
    let mut it = args.iter();
    assert_eq!(it.next().map(String::as_str), Some("curl"));
    while let Some(a) = it.next() {
        match a.as_str() {
            "-H" => {
                let h = it.next().expect("header");
                let (k, v) = h.split_once(':').expect("a header is Name: value");
                headers.push((k.trim().to_owned(), v.trim().to_owned()));
            }
            "-d" => body = Some(it.next().expect("body").clone()),
            "-X" => method = Some(it.next().expect("method").clone()),
            flags if flags.starts_with('-') && flags[1..].chars().all(|c| "sSf".contains(c)) => {}
            u if u.starts_with("http") => url = Some(u.to_owned()),
            other => panic!("curl argument outside the walk-through's subset: {other}"),
        }
    }
    let method = method.unwrap_or_else(|| if body.is_some() { "POST".into() } else { "GET".into() });
    let url = url.expect("a URL");
    let mut req = client.request(reqwest::Method::from_bytes(method.as_bytes()).unwrap(), &url);
    for (k, v) in &headers {
        req = req.header(k, v);
    }
    if let Some(b) = body {
        assert!(
            headers.iter().any(|(k, v)| k == "Content-Type" && v == "application/json"),
            "{url}: a body says it is JSON"
        );
        req = req.body(b);
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{method} {url}: {status} {text}");
    text
}

/// `jq [-r|-c] FILTER` for filters of `.name`, `.[n]` steps and `| fromjson`.
fn jq(args: &[String], input: &str) -> String {
    assert_eq!(args[0], "jq");
    let (flag, filter) = (args[1].as_str(), args[2].as_str());
    let mut v: Value = serde_json::from_str(input).expect("JSON answer");
    for stage in filter.split('|').map(str::trim) {
        if stage == "fromjson" {
            v = serde_json::from_str(v.as_str().expect("fromjson of a string")).expect("JSON text");
            continue;
        }
        let mut rest = stage.strip_prefix('.').expect("a path");
        while !rest.is_empty() {
            rest = rest.strip_prefix('.').unwrap_or(rest);
            if let Some(r) = rest.strip_prefix('[') {
                let (n, tail) = r.split_once(']').unwrap();
                v = v[n.parse::<usize>().unwrap()].clone();
                rest = tail;
            } else {
                let end = rest.find(['.', '[']).unwrap_or(rest.len());
                v = v[&rest[..end]].clone();
                rest = &rest[end..];
            }
        }
    }
    assert!(!v.is_null(), "jq {filter}: null in {input}");
    match (flag, &v) {
        ("-r", Value::String(s)) => s.clone(),
        ("-c" | "-r", _) => v.to_string(),
        _ => panic!("jq flag outside the subset: {flag}"),
    }
}

both_dbs!(
    async fn the_readme_walkthrough_runs_against_a_started_server(backend) {
        let app = spawn_app(backend).await;
        let b = seed_basic(&app.store, 2).await;
        let mut vars = HashMap::new();
        vars.insert("TOKEN".to_owned(), app.token("n1").await);
        vars.insert("TOKEN2".to_owned(), app.token("n2").await);
        let src = walkthrough();
        let mut calls = 0;
        // One command per line (continuations and quoted newlines joined by the lexer).
        let mut rest: Vec<Tok> = Vec::new();
        let mut chars = src.chars().peekable();
        // Lex lazily per command: variables set by earlier lines expand in later ones.
        loop {
            // Read up to the next command end with the variables known so far.
            let mut line = String::new();
            let (mut quote, mut depth) = (None, 0);
            while let Some(c) = chars.next() {
                // A comment runs to the end of its line (and may hold an apostrophe).
                if quote.is_none() && c == '#' && line.chars().last().is_none_or(char::is_whitespace) {
                    while chars.peek().is_some_and(|c| *c != '\n') {
                        chars.next();
                    }
                    continue;
                }
                line.push(c);
                match (quote, c) {
                    (None, '\'' | '"') => quote = Some(c),
                    (Some(q), c) if c == q => quote = None,
                    (None | Some('"'), '\\') => {
                        if let Some(n) = chars.next() {
                            line.push(n);
                        }
                    }
                    (None, '(') => depth += 1,
                    (None, ')') => depth -= 1,
                    (None, '\n') if depth == 0 => break,
                    _ => {}
                }
            }
            if line.trim().is_empty() {
                if chars.peek().is_none() {
                    break;
                }
                continue;
            }
            rest.clear();
            rest.extend(lex(&mut line.chars().peekable(), &vars, false).into_iter().filter(|t| *t != Tok::End));
            if rest.is_empty() {
                continue;
            }
            match rest.as_slice() {
                [Tok::Word(w), more @ ..] if w.contains('=') && !w.starts_with("curl") => {
                    let (name, value) = w.split_once('=').unwrap();
                    let value = match more {
                        [] => value.to_owned(),
                        [Tok::Sub(cmd)] if value.is_empty() => {
                            let stages: Vec<Vec<String>> = cmd
                                .split(|t| *t == Tok::Pipe)
                                .map(|s| s.iter().map(|t| match t { Tok::Word(w) => w.clone(), t => panic!("{t:?}") }).collect())
                                .collect();
                            calls += 1;
                            let out = curl(&app.client, &stages[0]).await;
                            match stages.len() {
                                1 => out,
                                2 => jq(&stages[1], &out),
                                _ => panic!("one pipe at most"),
                            }
                        }
                        other => panic!("assignment outside the subset: {other:?}"),
                    };
                    // The README's address is the default listener; the test's server is elsewhere.
                    let value = value.replace("http://127.0.0.1:8080", &app.url(""));
                    vars.insert(name.to_owned(), value);
                }
                [Tok::Word(c), ..] if c == "curl" => {
                    let words: Vec<String> =
                        rest.iter().map(|t| match t { Tok::Word(w) => w.clone(), t => panic!("{t:?}") }).collect();
                    calls += 1;
                    curl(&app.client, &words).await;
                }
                other => panic!("a line outside the walk-through's subset: {other:?}"),
            }
        }
        assert!(calls >= 12, "the walk-through made {calls} calls");
        // It did what it says: one loan, returned, wiped, verified by the other nurse.
        let device = &vars["DEVICE"];
        let mut tx = app.store.read().await.unwrap();
        let d = lending::store::devices::get(&mut tx, device).await.unwrap().unwrap();
        assert_eq!(d.status, DeviceStatus::Available);
        let wipes = lending::store::wipes::for_device(&mut tx, device).await.unwrap();
        assert_eq!(wipes.len(), 1);
        assert_eq!(wipes[0].id, vars["WIPE"]);
        assert_eq!(wipes[0].performed_by, b.nurse.user_id);
        assert_eq!(wipes[0].verified_by.as_deref(), Some(b.nurse2.user_id.as_str()));
        assert!(lending::store::loans::get(&mut tx, &vars["LOAN"]).await.unwrap().unwrap().closed_at.is_some());
        assert_eq!(lending::store::audit::count_action(&mut tx, "loan.check_out").await.unwrap(), 1);
        drop(tx);
        app.stop().await;
    }
);
