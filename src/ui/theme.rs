//! Colour themes as data (`themes/*.toml`): one style per role. Themes are embedded in the
//! binary and can be loaded from a file. Truecolor is used when the terminal announces it
//! (`COLORTERM=truecolor|24bit`); otherwise colours are mapped to the 256-colour palette.
//! `NO_COLOR` selects the mono theme, which relies on bold / reverse / underline only.

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

pub const BUILTIN: [(&str, &str); 4] = [
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("mono", include_str!("../../themes/mono.toml")),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColorDepth {
    TrueColor,
    Ansi256,
}

impl ColorDepth {
    pub fn detect() -> Self {
        match std::env::var("COLORTERM").map(|v| v.to_lowercase()) {
            Ok(v) if v == "truecolor" || v == "24bit" => ColorDepth::TrueColor,
            _ => ColorDepth::Ansi256,
        }
    }
}

/// True when the user asked for no colour (https://no-color.org: set and not empty).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

#[derive(Debug, Clone, PartialEq)]
pub struct Theme {
    pub name: String,
    pub base: Style,
    pub dim: Style,
    pub text: Style,
    pub accent: Style,
    pub header: Style,
    pub border: Style,
    pub title: Style,
    pub selection: Style,
    pub tab_active: Style,
    pub tab_inactive: Style,
    pub ok: Style,
    pub warn: Style,
    pub fail: Style,
    pub unknown: Style,
    pub stale: Style,
    pub down: Style,
    pub emulated: Style,
    pub owner_drives: Style,
    pub owner_compute: Style,
    pub owner_frontend: Style,
    pub owner_job: Style,
    pub owner_os: Style,
    pub owner_free: Style,
    pub conflict: Style,
}

#[derive(Debug, thiserror::Error)]
pub enum ThemeError {
    #[error("theme {source_name}: {detail}")]
    Invalid { source_name: String, detail: String },
    #[error(
        "no theme `{0}`: use one of default, light, high-contrast, mono, or a path to a .toml file"
    )]
    Unknown(String),
    #[error("theme file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    name: String,
    #[allow(dead_code)]
    description: Option<String>,
    roles: BTreeMap<String, RoleSpec>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RoleSpec {
    fg: Option<String>,
    bg: Option<String>,
    #[serde(default)]
    modifiers: Vec<String>,
}

const ROLES: &[&str] = &[
    "base",
    "dim",
    "text",
    "accent",
    "header",
    "border",
    "title",
    "selection",
    "tab_active",
    "tab_inactive",
    "ok",
    "warn",
    "fail",
    "unknown",
    "stale",
    "down",
    "emulated",
    "owner_drives",
    "owner_compute",
    "owner_frontend",
    "owner_job",
    "owner_os",
    "owner_free",
    "conflict",
];

fn parse_color(s: &str, depth: ColorDepth) -> Result<Color, String> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix('#') {
        if hex.len() != 6 {
            return Err(format!("`{s}` is not #rrggbb"));
        }
        let v = u32::from_str_radix(hex, 16).map_err(|_| format!("`{s}` is not #rrggbb"))?;
        let (r, g, b) = ((v >> 16) as u8, (v >> 8) as u8, v as u8);
        return Ok(match depth {
            ColorDepth::TrueColor => Color::Rgb(r, g, b),
            ColorDepth::Ansi256 => Color::Indexed(rgb_to_256(r, g, b)),
        });
    }
    if let Ok(i) = s.parse::<u8>() {
        return Ok(Color::Indexed(i));
    }
    s.parse::<Color>()
        .map_err(|_| format!("`{s}` is not a colour (#rrggbb, 0-255 or a name like red)"))
}

/// Nearest colour of the xterm 256-colour palette (the 6×6×6 cube or the grey ramp).
pub fn rgb_to_256(r: u8, g: u8, b: u8) -> u8 {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    let nearest = |v: u8| -> usize {
        (0..6)
            .min_by_key(|&i| (i32::from(LEVELS[i]) - i32::from(v)).abs())
            .unwrap()
    };
    let (ri, gi, bi) = (nearest(r), nearest(g), nearest(b));
    let cube = (LEVELS[ri], LEVELS[gi], LEVELS[bi]);
    let dist = |(a, b2, c): (u8, u8, u8)| {
        let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).pow(2);
        d(a, r) + d(b2, g) + d(c, b)
    };
    let avg = (u32::from(r) + u32::from(g) + u32::from(b)) / 3;
    let gi_ = ((avg.saturating_sub(8)) / 10).min(23) as u8;
    let grey_level = 8 + 10 * gi_;
    if dist((grey_level, grey_level, grey_level)) < dist(cube) {
        232 + gi_
    } else {
        16 + 36 * ri as u8 + 6 * gi as u8 + bi as u8
    }
}

fn parse_modifier(m: &str) -> Result<Modifier, String> {
    Ok(match m {
        "bold" => Modifier::BOLD,
        "dim" => Modifier::DIM,
        "italic" => Modifier::ITALIC,
        "underlined" => Modifier::UNDERLINED,
        "reversed" => Modifier::REVERSED,
        "crossed_out" => Modifier::CROSSED_OUT,
        _ => {
            return Err(format!(
                "unknown modifier `{m}` (bold, dim, italic, underlined, reversed, crossed_out)"
            ));
        }
    })
}

impl Theme {
    pub fn parse(text: &str, source_name: &str, depth: ColorDepth) -> Result<Theme, ThemeError> {
        let invalid = |detail: String| ThemeError::Invalid {
            source_name: source_name.to_string(),
            detail,
        };
        let f: File = toml::from_str(text).map_err(|e| invalid(e.message().to_string()))?;
        for k in f.roles.keys() {
            if !ROLES.contains(&k.as_str()) {
                return Err(invalid(format!("unknown role `{k}`")));
            }
        }
        let style = |role: &str| -> Result<Style, ThemeError> {
            let Some(spec) = f.roles.get(role) else {
                return Err(invalid(format!("missing role `{role}`")));
            };
            let mut s = Style::default();
            if let Some(c) = &spec.fg {
                s = s.fg(parse_color(c, depth).map_err(|e| invalid(format!("{role}.fg: {e}")))?);
            }
            if let Some(c) = &spec.bg {
                s = s.bg(parse_color(c, depth).map_err(|e| invalid(format!("{role}.bg: {e}")))?);
            }
            for m in &spec.modifiers {
                s = s.add_modifier(parse_modifier(m).map_err(|e| invalid(format!("{role}: {e}")))?);
            }
            Ok(s)
        };
        Ok(Theme {
            name: f.name.clone(),
            base: style("base")?,
            dim: style("dim")?,
            text: style("text")?,
            accent: style("accent")?,
            header: style("header")?,
            border: style("border")?,
            title: style("title")?,
            selection: style("selection")?,
            tab_active: style("tab_active")?,
            tab_inactive: style("tab_inactive")?,
            ok: style("ok")?,
            warn: style("warn")?,
            fail: style("fail")?,
            unknown: style("unknown")?,
            stale: style("stale")?,
            down: style("down")?,
            emulated: style("emulated")?,
            owner_drives: style("owner_drives")?,
            owner_compute: style("owner_compute")?,
            owner_frontend: style("owner_frontend")?,
            owner_job: style("owner_job")?,
            owner_os: style("owner_os")?,
            owner_free: style("owner_free")?,
            conflict: style("conflict")?,
        })
    }

    pub fn builtin(name: &str, depth: ColorDepth) -> Result<Theme, ThemeError> {
        let (_, text) = BUILTIN
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| ThemeError::Unknown(name.to_string()))?;
        Theme::parse(text, name, depth)
    }

    /// A built-in theme by name, or a theme file by path.
    pub fn load(name_or_path: &str, depth: ColorDepth) -> Result<Theme, ThemeError> {
        if BUILTIN.iter().any(|(n, _)| *n == name_or_path) {
            return Theme::builtin(name_or_path, depth);
        }
        if name_or_path.ends_with(".toml") || Path::new(name_or_path).exists() {
            let text =
                std::fs::read_to_string(name_or_path).map_err(|source| ThemeError::Read {
                    path: name_or_path.to_string(),
                    source,
                })?;
            return Theme::parse(&text, name_or_path, depth);
        }
        Err(ThemeError::Unknown(name_or_path.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_theme_parses_in_both_depths() {
        for (name, _) in BUILTIN {
            for d in [ColorDepth::TrueColor, ColorDepth::Ansi256] {
                let t = Theme::builtin(name, d).unwrap();
                assert_eq!(t.name, name);
            }
        }
    }

    #[test]
    fn ansi256_fallback_maps_to_the_palette() {
        let t = Theme::builtin("default", ColorDepth::Ansi256).unwrap();
        assert!(matches!(t.fail.fg, Some(Color::Indexed(_))));
        assert_eq!(rgb_to_256(255, 0, 0), 196);
        assert_eq!(rgb_to_256(0, 0, 0), 16);
        assert_eq!(rgb_to_256(128, 128, 128), 244);
        let t = Theme::builtin("default", ColorDepth::TrueColor).unwrap();
        assert!(matches!(t.fail.fg, Some(Color::Rgb(0xf8, 0x51, 0x49))));
    }

    #[test]
    fn mono_keeps_selection_and_failures_visible_without_colour() {
        let t = Theme::builtin("mono", ColorDepth::TrueColor).unwrap();
        assert!(t.selection.add_modifier.contains(Modifier::REVERSED));
        assert!(t.fail.add_modifier.contains(Modifier::BOLD));
        assert!(t.fail.fg.is_none() && t.selection.bg.is_none());
    }

    /// Reverse video on anything but the selection would hide the cursor there (reverse
    /// patched onto reverse changes nothing).
    #[test]
    fn mono_reserves_reverse_video_for_the_selection() {
        let t = Theme::builtin("mono", ColorDepth::TrueColor).unwrap();
        let others = [
            ("base", t.base),
            ("dim", t.dim),
            ("text", t.text),
            ("accent", t.accent),
            ("header", t.header),
            ("border", t.border),
            ("title", t.title),
            ("tab_inactive", t.tab_inactive),
            ("ok", t.ok),
            ("warn", t.warn),
            ("fail", t.fail),
            ("unknown", t.unknown),
            ("stale", t.stale),
            ("down", t.down),
            ("emulated", t.emulated),
            ("owner_drives", t.owner_drives),
            ("owner_compute", t.owner_compute),
            ("owner_frontend", t.owner_frontend),
            ("owner_job", t.owner_job),
            ("owner_os", t.owner_os),
            ("owner_free", t.owner_free),
            ("conflict", t.conflict),
        ];
        for (role, style) in others {
            assert!(
                !style.add_modifier.contains(Modifier::REVERSED),
                "mono role {role} uses reverse video"
            );
        }
        assert!(t.tab_active.add_modifier.contains(Modifier::REVERSED));
    }

    #[test]
    fn bad_themes_say_what_is_wrong() {
        let e = Theme::parse(
            "name = \"x\"\n[roles]\nbase = { fg = \"#zz0000\" }\n",
            "x.toml",
            ColorDepth::TrueColor,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("base.fg") && e.contains("#zz0000"), "{e}");
        let e = Theme::parse(
            "name = \"x\"\n[roles]\nbase = {}\n",
            "x.toml",
            ColorDepth::TrueColor,
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("missing role `dim`"), "{e}");
        let e = Theme::load("solarized", ColorDepth::TrueColor)
            .unwrap_err()
            .to_string();
        assert!(e.contains("default, light, high-contrast, mono"), "{e}");
    }
}
