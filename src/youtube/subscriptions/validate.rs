//! Validation of the subscription and profile bodies. Every problem is collected, so one answer
//! names every bad field (`VALIDATION_ERROR` with `details.fields`).
//!
//! Bodies are JSON objects read key by key: a key that is present and `null` clears a setting
//! (in a PATCH), a key that is absent keeps it. Keys are camelCase like the rest of the API; the
//! snake_case spellings of the issue (`interval_hours`, `keep_latest` ...) are accepted too.

use serde_json::{Map, Value};

use super::model::{
    CONTAINERS, HEIGHTS, ProfileInput, SPONSORBLOCK_MARK_ONLY, SPONSORBLOCK_REMOVABLE, Settings,
    Sponsorblock, Subtitles,
};

/// Longest include/exclude pattern, in characters.
pub const MAX_PATTERN_CHARS: usize = 200;
/// Compiled size a pattern may take (the `regex` crate's own bound), so a short pattern with
/// huge repetitions cannot eat memory.
pub const PATTERN_SIZE_LIMIT: usize = 256 * 1024;
/// Interval bounds, in seconds: 15 minutes to 7 days.
pub const MIN_INTERVAL_SECS: i64 = 15 * 60;
pub const MAX_INTERVAL_SECS: i64 = 7 * 24 * 3600;
/// Longest decline reason, in characters.
pub const MAX_REASON_CHARS: usize = 500;

/// Field problems: `(field, reason)`.
pub type Problems = Vec<(String, String)>;

/// The camelCase name of a body key, or `None` for a key no body has.
fn normalize(key: &str) -> &str {
    match key {
        "interval_hours" => "intervalHours",
        "keep_latest" => "keepLatest",
        "keep_days" => "keepDays",
        "skip_shorts" => "skipShorts",
        "skip_live" => "skipLive",
        "max_height" => "maxHeight",
        other => other,
    }
}

/// The keys of `body`, camelCased; a key given in both spellings is a problem.
pub fn normalized(body: &Map<String, Value>, problems: &mut Problems) -> Map<String, Value> {
    let mut out = Map::new();
    for (key, value) in body {
        let name = normalize(key);
        if out.insert(name.to_owned(), value.clone()).is_some() {
            problems.push((name.to_owned(), "is given twice".to_owned()));
        }
    }
    out
}

/// The settings keys.
const SETTING_KEYS: [&str; 9] = [
    "intervalHours",
    "after",
    "keepLatest",
    "keepDays",
    "include",
    "exclude",
    "skipShorts",
    "skipLive",
    "profile",
];

/// Applies the settings keys of `body` (already [`normalized`]) to `settings`; `allowed_extra`
/// are the other keys the body may have (e.g. `url`). An unknown key is a problem.
pub fn apply_settings(
    settings: &mut Settings,
    body: &Map<String, Value>,
    allowed_extra: &[&str],
    problems: &mut Problems,
) {
    for (key, value) in body {
        let key = key.as_str();
        let mut bad = |reason: &str| problems.push((key.to_owned(), reason.to_owned()));
        match key {
            "intervalHours" => match (value, value.as_f64()) {
                (Value::Null, _) => settings.interval_secs = Settings::default().interval_secs,
                (_, Some(hours)) if (0.25..=168.0).contains(&hours) => {
                    settings.interval_secs = ((hours * 3600.0).round() as i64)
                        .clamp(MIN_INTERVAL_SECS, MAX_INTERVAL_SECS);
                }
                _ => bad("must be a number of hours from 0.25 to 168"),
            },
            "after" => match value {
                Value::Null => settings.after = None,
                Value::String(s) if is_date(s) => settings.after = Some(s.clone()),
                _ => bad("must be a date as YYYY-MM-DD"),
            },
            "keepLatest" => match optional_int(value, 1, 10_000) {
                Ok(n) => settings.keep_latest = n,
                Err(()) => bad("must be a whole number from 1 to 10000, or null"),
            },
            "keepDays" => match optional_int(value, 1, 3650) {
                Ok(n) => settings.keep_days = n,
                Err(()) => bad("must be a whole number from 1 to 3650, or null"),
            },
            "include" | "exclude" => match pattern(value) {
                Ok(p) if key == "include" => settings.include = p,
                Ok(p) => settings.exclude = p,
                Err(reason) => bad(&reason),
            },
            "skipShorts" => match value.as_bool() {
                Some(b) => settings.skip_shorts = b,
                None => bad("must be true or false"),
            },
            "skipLive" => match value.as_bool() {
                Some(b) => settings.skip_live = b,
                None => bad("must be true or false"),
            },
            // Whether the profile exists is checked against the database by the caller.
            "profile" => match value {
                Value::Null => settings.profile_id = None,
                Value::String(s) if (1..=64).contains(&s.len()) => {
                    settings.profile_id = Some(s.clone());
                }
                _ => bad("must be a profile id, or null"),
            },
            other if allowed_extra.contains(&other) => {}
            _ => bad("is not a known field"),
        }
    }
}

/// Whether `key` is one of the settings.
pub fn is_setting(key: &str) -> bool {
    SETTING_KEYS.contains(&key)
}

fn optional_int(value: &Value, min: i64, max: i64) -> Result<Option<i64>, ()> {
    match value {
        Value::Null => Ok(None),
        v => match v.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(()),
        },
    }
}

/// A real calendar day written `YYYY-MM-DD`.
pub fn is_date(text: &str) -> bool {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    text.len() == 10 && time::Date::parse(text, format).is_ok()
}

/// A title pattern: `null` or `""` is none; otherwise at most [`MAX_PATTERN_CHARS`] characters
/// that compile within [`PATTERN_SIZE_LIMIT`].
fn pattern(value: &Value) -> Result<Option<String>, String> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) if s.chars().count() > MAX_PATTERN_CHARS => {
            Err(format!("must be at most {MAX_PATTERN_CHARS} characters"))
        }
        Value::String(s) => compile(s).map(|_| Some(s.clone())).map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => "is too complex".to_owned(),
            _ => "is not a valid regular expression".to_owned(),
        }),
        _ => Err("must be a regular expression (text), or null".to_owned()),
    }
}

/// Compiles a title pattern as the checks will: case-insensitive, bounded in size.
pub fn compile(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(pattern)
        .case_insensitive(true)
        .size_limit(PATTERN_SIZE_LIMIT)
        .dfa_size_limit(PATTERN_SIZE_LIMIT)
        .build()
}

/// A decline reason: optional text of at most [`MAX_REASON_CHARS`] characters.
pub fn reason(value: Option<&Value>) -> Result<Option<String>, Problems> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
        Some(Value::String(s)) if s.chars().count() <= MAX_REASON_CHARS => {
            Ok(Some(s.trim().to_owned()))
        }
        Some(_) => Err(vec![(
            "reason".to_owned(),
            format!("must be text of at most {MAX_REASON_CHARS} characters"),
        )]),
    }
}

/// A language code as yt-dlp's `--sub-langs` takes it, e.g. `en`, `pt-BR`, `zh-Hans`.
fn is_language(code: &str) -> bool {
    let mut parts = code.split('-');
    let first_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphabetic()));
    first_ok
        && parts.all(|p| (2..=8).contains(&p.len()) && p.chars().all(|c| c.is_ascii_alphanumeric()))
}

/// Reads a whole profile body (POST and PUT take the whole profile): `{name, maxHeight?,
/// container?, subtitles?: {languages?, mode?}, sponsorblock?: {mode?, categories?}}`.
pub fn profile(body: &Map<String, Value>) -> Result<ProfileInput, Problems> {
    let mut problems = Problems::new();
    let body = normalized(body, &mut problems);
    let mut bad = |field: &str, reason: &str| problems.push((field.to_owned(), reason.to_owned()));
    let name = match body.get("name") {
        Some(Value::String(s)) if (1..=100).contains(&s.trim().chars().count()) => {
            s.trim().to_owned()
        }
        None => {
            bad("name", "is required");
            String::new()
        }
        Some(_) => {
            bad("name", "must be text of 1 to 100 characters");
            String::new()
        }
    };
    let max_height = match body.get("maxHeight") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64().and_then(|n| u32::try_from(n).ok()) {
            Some(h) if HEIGHTS.contains(&h) => Some(h),
            _ => {
                bad(
                    "maxHeight",
                    "must be one of 360, 480, 720, 1080, 1440, 2160, or null",
                );
                None
            }
        },
    };
    let container = match body.get("container") {
        None | Some(Value::Null) => "mp4".to_owned(),
        Some(Value::String(s)) if CONTAINERS.contains(&s.as_str()) => s.clone(),
        Some(_) => {
            bad("container", "must be one of mp4, mkv, webm");
            "mp4".to_owned()
        }
    };
    let mut subtitles = Subtitles {
        languages: Vec::new(),
        mode: "embedded".to_owned(),
    };
    match body.get("subtitles") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (key, value) in o {
                match key.as_str() {
                    "languages" => match value.as_array() {
                        Some(list)
                            if list.len() <= 20
                                && list.iter().all(|l| l.as_str().is_some_and(is_language)) =>
                        {
                            let mut langs: Vec<String> = Vec::new();
                            for l in list.iter().filter_map(Value::as_str) {
                                if !langs.iter().any(|x| x.eq_ignore_ascii_case(l)) {
                                    langs.push(l.to_owned());
                                }
                            }
                            subtitles.languages = langs;
                        }
                        _ => bad(
                            "subtitles.languages",
                            "must be a list of up to 20 language codes such as en or pt-BR",
                        ),
                    },
                    "mode" => match value.as_str() {
                        Some(m @ ("embedded" | "sidecar")) => subtitles.mode = m.to_owned(),
                        _ => bad("subtitles.mode", "must be embedded or sidecar"),
                    },
                    other => bad(&format!("subtitles.{other}"), "is not a known field"),
                }
            }
        }
        Some(_) => bad("subtitles", "must be an object {languages, mode}"),
    }
    let mut sponsorblock = Sponsorblock {
        mode: "off".to_owned(),
        categories: Vec::new(),
    };
    match body.get("sponsorblock") {
        None | Some(Value::Null) => {}
        Some(Value::Object(o)) => {
            for (key, value) in o {
                match key.as_str() {
                    "mode" => match value.as_str() {
                        Some(m @ ("off" | "remove" | "mark")) => sponsorblock.mode = m.to_owned(),
                        _ => bad("sponsorblock.mode", "must be off, remove or mark"),
                    },
                    "categories" => match value.as_array() {
                        Some(list) if list.iter().all(Value::is_string) => {
                            let mut cats: Vec<String> = Vec::new();
                            for c in list.iter().filter_map(Value::as_str) {
                                if !cats.iter().any(|x| x == c) {
                                    cats.push(c.to_owned());
                                }
                            }
                            sponsorblock.categories = cats;
                        }
                        _ => bad("sponsorblock.categories", "must be a list of categories"),
                    },
                    other => bad(&format!("sponsorblock.{other}"), "is not a known field"),
                }
            }
            let allowed = |c: &str| {
                SPONSORBLOCK_REMOVABLE.contains(&c)
                    || (sponsorblock.mode == "mark" && SPONSORBLOCK_MARK_ONLY.contains(&c))
            };
            if let Some(c) = sponsorblock.categories.iter().find(|c| !allowed(c)) {
                let mut names = SPONSORBLOCK_REMOVABLE.to_vec();
                if sponsorblock.mode == "mark" {
                    names.extend(SPONSORBLOCK_MARK_ONLY);
                }
                bad(
                    "sponsorblock.categories",
                    &format!("{c} is not one of {}", names.join(", ")),
                );
            } else if sponsorblock.mode != "off" && sponsorblock.categories.is_empty() {
                bad(
                    "sponsorblock.categories",
                    "must name at least one category when the mode is not off",
                );
            }
        }
        Some(_) => bad("sponsorblock", "must be an object {mode, categories}"),
    }
    for key in body.keys() {
        if !matches!(
            key.as_str(),
            "name" | "maxHeight" | "container" | "subtitles" | "sponsorblock"
        ) {
            bad(key, "is not a known field");
        }
    }
    if problems.is_empty() {
        Ok(ProfileInput {
            name,
            max_height,
            container,
            subtitles,
            sponsorblock,
        })
    } else {
        Err(problems)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn settings_of(body: Value) -> Result<Settings, Problems> {
        let mut problems = Problems::new();
        let body = normalized(body.as_object().unwrap(), &mut problems);
        let mut s = Settings::default();
        apply_settings(&mut s, &body, &["url"], &mut problems);
        if problems.is_empty() {
            Ok(s)
        } else {
            Err(problems)
        }
    }

    fn fields(problems: Problems) -> Vec<String> {
        let mut f: Vec<String> = problems.into_iter().map(|(k, _)| k).collect();
        f.sort();
        f
    }

    #[test]
    fn settings_in_both_spellings_and_their_bounds() {
        let s = settings_of(json!({"url": "x", "interval_hours": 0.25, "keepLatest": 10,
            "keep_days": 3650, "after": "2024-02-29", "include": "(?i)review|unboxing",
            "exclude": "", "skipShorts": true, "skip_live": false, "profile": "p1"}))
        .unwrap();
        assert_eq!(s.interval_secs, 900);
        assert_eq!(s.keep_latest, Some(10));
        assert_eq!(s.keep_days, Some(3650));
        assert_eq!(s.after.as_deref(), Some("2024-02-29"));
        assert_eq!(s.include.as_deref(), Some("(?i)review|unboxing"));
        assert_eq!(s.exclude, None);
        assert!(s.skip_shorts && !s.skip_live);
        assert_eq!(s.profile_id.as_deref(), Some("p1"));
        assert_eq!(
            settings_of(json!({"intervalHours": 168}))
                .unwrap()
                .interval_secs,
            604_800
        );
        assert_eq!(settings_of(json!({})).unwrap(), Settings::default());
    }

    #[test]
    fn every_bad_field_is_named() {
        let problems = settings_of(json!({"intervalHours": 0.2, "keepLatest": 0,
            "keepDays": 3651, "after": "2023-02-29", "include": "(unclosed",
            "exclude": "a".repeat(201), "skipShorts": "yes", "skipLive": 1, "profile": 7,
            "colour": "red"}))
        .unwrap_err();
        assert_eq!(
            fields(problems),
            [
                "after",
                "colour",
                "exclude",
                "include",
                "intervalHours",
                "keepDays",
                "keepLatest",
                "profile",
                "skipLive",
                "skipShorts"
            ]
        );
        for bad in [json!(169), json!("6"), json!(-1)] {
            assert!(settings_of(json!({ "intervalHours": bad })).is_err());
        }
        for bad in [
            "2024-1-01",
            "20240101",
            "2024-13-01",
            "2024-01-01T00:00:00Z",
            "",
        ] {
            assert!(settings_of(json!({ "after": bad })).is_err(), "{bad}");
        }
        assert_eq!(
            fields(settings_of(json!({"keepLatest": 1, "keep_latest": 2})).unwrap_err()),
            ["keepLatest"]
        );
    }

    #[test]
    fn patterns_are_bounded() {
        // 200 characters are fine, a pattern that compiles too big is not.
        assert!(settings_of(json!({ "include": "a".repeat(200) })).is_ok());
        let huge = settings_of(json!({ "include": "\\w{1000}\\w{1000}\\w{1000}" })).unwrap_err();
        assert_eq!(huge[0].1, "is too complex");
        // Characters, not bytes.
        assert!(settings_of(json!({ "include": "é".repeat(200) })).is_ok());
        assert!(compile("REVIEW").unwrap().is_match("a review of"));
    }

    #[test]
    fn profiles() {
        let p = profile(
            json!({"name": " Plex 1080p ", "maxHeight": 1080, "container": "mp4",
                "subtitles": {"languages": ["en", "pt-BR", "EN"], "mode": "sidecar"},
                "sponsorblock": {"mode": "mark", "categories": ["sponsor", "chapter"]}})
            .as_object()
            .unwrap(),
        )
        .unwrap();
        assert_eq!(p.name, "Plex 1080p");
        assert_eq!(p.subtitles.languages, ["en", "pt-BR"]);
        assert_eq!(p.sponsorblock.categories, ["sponsor", "chapter"]);
        let minimal = profile(json!({"name": "x"}).as_object().unwrap()).unwrap();
        assert_eq!(
            (
                minimal.container.as_str(),
                minimal.sponsorblock.mode.as_str()
            ),
            ("mp4", "off")
        );
        let problems = profile(
            json!({"maxHeight": 1081, "container": "avi",
                "subtitles": {"languages": ["english!"], "mode": "burned"},
                "sponsorblock": {"mode": "remove", "categories": ["chapter"]}, "extra": 1})
            .as_object()
            .unwrap(),
        )
        .unwrap_err();
        assert_eq!(
            fields(problems),
            [
                "container",
                "extra",
                "maxHeight",
                "name",
                "sponsorblock.categories",
                "subtitles.languages",
                "subtitles.mode"
            ]
        );
        let empty = profile(
            json!({"name": "x", "sponsorblock": {"mode": "remove"}})
                .as_object()
                .unwrap(),
        )
        .unwrap_err();
        assert_eq!(fields(empty), ["sponsorblock.categories"]);
    }
}
