//! The embedded font (DejaVu Sans, Bitstream Vera licence: assets/fonts/) and
//! its metrics. Layout measures with these; backends embed the same bytes.
use std::collections::HashMap;
use std::sync::OnceLock;

static REGULAR: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans.ttf");
static BOLD: &[u8] = include_bytes!("../../../assets/fonts/DejaVuSans-Bold.ttf");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum FontStyle {
    Regular,
    Bold,
}

/// Glyph ids and advances of one face, with a direct table for the first
/// 0x800 code points (Latin, Greek, Cyrillic…) so the hot path never hashes.
pub struct Font {
    pub data: &'static [u8],
    pub postscript_name: String,
    pub units_per_em: f32,
    pub ascent: f32,
    pub descent: f32,
    pub cap_height: f32,
    pub bbox: [f32; 4],
    table: Vec<(u16, u16)>,
    rest: HashMap<char, (u16, u16)>,
    fallback: (u16, u16),
}

const TABLE: usize = 0x800;

impl Font {
    fn load(data: &'static [u8], fallback_name: &str) -> Font {
        // The font is compiled in and checked by tests; a failure here is a build defect.
        let face = ttf_parser::Face::parse(data, 0).expect("embedded font parses");
        let lookup = |c: char| -> Option<(u16, u16)> {
            let gid = face.glyph_index(c)?;
            Some((gid.0, face.glyph_hor_advance(gid).unwrap_or(0)))
        };
        let fallback = lookup('?').unwrap_or((0, 0));
        let table = (0..TABLE as u32)
            .map(|cp| char::from_u32(cp).and_then(lookup).unwrap_or(fallback))
            .collect();
        // Everything beyond the table that the font covers (a few thousand glyphs).
        let mut rest = HashMap::new();
        if let Some(cmap) = face.tables().cmap {
            for sub in cmap.subtables.into_iter().filter(|s| s.is_unicode()) {
                sub.codepoints(|cp| {
                    if cp as usize >= TABLE
                        && let Some(c) = char::from_u32(cp)
                        && let Some(g) = lookup(c)
                    {
                        rest.insert(c, g);
                    }
                });
            }
        }
        let name = face
            .names()
            .into_iter()
            .find(|n| n.name_id == ttf_parser::name_id::POST_SCRIPT_NAME)
            .and_then(|n| n.to_string())
            .unwrap_or_else(|| fallback_name.to_string());
        let bb = face.global_bounding_box();
        Font {
            data,
            postscript_name: name,
            units_per_em: face.units_per_em() as f32,
            ascent: face.ascender() as f32,
            descent: face.descender() as f32,
            cap_height: face.capital_height().unwrap_or(face.ascender()) as f32,
            bbox: [bb.x_min as f32, bb.y_min as f32, bb.x_max as f32, bb.y_max as f32],
            table,
            rest,
            fallback,
        }
    }

    /// Glyph id and advance (font units) of `c`; characters the font lacks show as '?'.
    #[inline]
    pub(crate) fn glyph(&self, c: char) -> (u16, u16) {
        let cp = c as usize;
        if cp < TABLE { self.table[cp] } else { self.rest.get(&c).copied().unwrap_or(self.fallback) }
    }

    /// Width of `text` in points at `size`.
    pub(crate) fn width(&self, text: &str, size: f32) -> f32 {
        let units: u32 = text.chars().map(|c| u32::from(self.glyph(c).1)).sum();
        units as f32 * size / self.units_per_em
    }

    /// Scale from font units to PDF glyph space (1000 per em).
    pub(crate) fn to_pdf_units(&self, v: f32) -> f32 {
        v * 1000.0 / self.units_per_em
    }
}

pub struct Fonts {
    pub regular: Font,
    pub bold: Font,
}

impl Fonts {
    pub fn get() -> &'static Fonts {
        static FONTS: OnceLock<Fonts> = OnceLock::new();
        FONTS.get_or_init(|| Fonts {
            regular: Font::load(REGULAR, "DejaVuSans"),
            bold: Font::load(BOLD, "DejaVuSans-Bold"),
        })
    }

    pub(crate) fn style(&self, style: FontStyle) -> &Font {
        match style {
            FontStyle::Regular => &self.regular,
            FontStyle::Bold => &self.bold,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn portuguese_glyphs_exist_and_have_width() {
        let f = &Fonts::get().regular;
        for c in "çãéõú—€".chars() {
            let (gid, adv) = f.glyph(c);
            assert!(gid != 0 && adv > 0, "{c}");
        }
        assert!(f.width("Região", 10.0) > f.width("Reg", 10.0));
        assert_eq!(f.postscript_name, "DejaVuSans");
    }
}
