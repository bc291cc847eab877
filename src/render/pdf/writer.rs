//! PDF backend on pdf-writer. Pages go to the file as soon as they are laid
//! out (each object is written and its offset noted), so memory stays flat
//! however many pages there are; the fonts, subset to the glyphs actually used,
//! and the cross-reference table are written at the end.
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};

use chrono::{Datelike, Timelike, Utc};
use pdf_writer::types::{CidFontType, FontFlags, SystemInfo, UnicodeCmap};
use pdf_writer::writers::{Catalog, DocumentInfo};
use pdf_writer::{Chunk, Content, Filter, Finish, Name, Rect, Ref, Settings, Str, TextStr};
use subsetter::GlyphRemapper;

use super::backend::{PdfBackend, PdfError};
use super::font::{Font, FontStyle, Fonts};

/// Glyphs a document uses from one font, numbered in order of first use.
struct UsedGlyphs {
    font: &'static Font,
    remapper: GlyphRemapper,
    /// New glyph id per character, 0 meaning "not seen yet" (0 is .notdef, never a character's).
    direct: Vec<u16>,
    other: HashMap<char, u16>,
    unicode: Vec<(u16, char)>,
}

impl UsedGlyphs {
    fn new(font: &'static Font) -> Self {
        Self { font, remapper: GlyphRemapper::new(), direct: vec![0; 0x800], other: HashMap::new(), unicode: Vec::new() }
    }

    #[inline]
    fn id(&mut self, c: char) -> u16 {
        let cp = c as usize;
        if cp < self.direct.len() && self.direct[cp] != 0 {
            return self.direct[cp];
        }
        if let Some(&g) = self.other.get(&c) {
            return g;
        }
        let old = self.font.glyph(c).0;
        let new = self.remapper.remap(old);
        if new != 0 {
            self.unicode.push((new, c));
        }
        if cp < self.direct.len() {
            self.direct[cp] = new;
        } else {
            self.other.insert(c, new);
        }
        new
    }
}

struct FontRefs {
    type0: Ref,
    cid: Ref,
    descriptor: Ref,
    file: Ref,
    to_unicode: Ref,
}

/// Counts bytes so every object's offset is known for the xref table.
struct Counting<W> {
    inner: W,
    written: u64,
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

pub(crate) struct PdfWriterBackend {
    out: Counting<BufWriter<File>>,
    /// Byte offset of object n at index n (index 0 is the free head).
    offsets: Vec<u64>,
    catalog: Ref,
    pages: Ref,
    info: Ref,
    regular_refs: FontRefs,
    bold_refs: FontRefs,
    page_refs: Vec<Ref>,
    regular: UsedGlyphs,
    bold: UsedGlyphs,
    graphics: Content,
    text: Content,
    text_font: Option<(FontStyle, f32)>,
    page_size: (f32, f32),
    glyph_buf: Vec<u8>,
    settings: Settings,
}

impl PdfWriterBackend {
    pub(crate) fn create(file: File) -> Result<Self, PdfError> {
        let mut out = Counting { inner: BufWriter::with_capacity(256 * 1024, file), written: 0 };
        out.write_all(b"%PDF-1.7\n%\x80\x80\x80\x80\n")?;
        let mut next = 1;
        let mut alloc = || {
            let r = Ref::new(next);
            next += 1;
            r
        };
        let (catalog, pages, info) = (alloc(), alloc(), alloc());
        let mut font_refs =
            || FontRefs { type0: alloc(), cid: alloc(), descriptor: alloc(), file: alloc(), to_unicode: alloc() };
        let regular_refs = font_refs();
        let bold_refs = font_refs();
        let fonts = Fonts::get();
        Ok(Self {
            out,
            offsets: vec![0; bold_refs.to_unicode.get() as usize + 1],
            catalog,
            pages,
            info,
            regular_refs,
            bold_refs,
            page_refs: Vec::new(),
            regular: UsedGlyphs::new(&fonts.regular),
            bold: UsedGlyphs::new(&fonts.bold),
            graphics: Content::new(),
            text: Content::new(),
            text_font: None,
            page_size: (0.0, 0.0),
            glyph_buf: Vec::with_capacity(256),
            settings: Settings { pretty: false },
        })
    }

    fn alloc(&mut self) -> Ref {
        self.offsets.push(0);
        Ref::new((self.offsets.len() - 1) as i32)
    }

    /// Writes a chunk holding exactly one object, recording where it starts.
    fn emit(&mut self, id: Ref, chunk: &Chunk) -> Result<(), PdfError> {
        self.offsets[id.get() as usize] = self.out.written;
        self.out.write_all(chunk.as_bytes())?;
        Ok(())
    }

    fn chunk(&self) -> Chunk {
        Chunk::with_settings(self.settings)
    }

    fn write_font(&mut self, style: FontStyle) -> Result<(), PdfError> {
        let (used, refs, tag) = match style {
            FontStyle::Regular => (&self.regular, &self.regular_refs, "RPDAAA"),
            FontStyle::Bold => (&self.bold, &self.bold_refs, "RPDAAB"),
        };
        let font = used.font;
        let subset = subsetter::subset(font.data, 0, &used.remapper).map_err(|e| PdfError::Font(e.to_string()))?;
        let name = format!("{tag}+{}", font.postscript_name);
        let face = ttf_parser::Face::parse(font.data, 0).map_err(|e| PdfError::Font(e.to_string()))?;
        let widths: Vec<f32> = used
            .remapper
            .remapped_gids()
            .map(|old| font.to_pdf_units(face.glyph_hor_advance(ttf_parser::GlyphId(old)).map(f32::from).unwrap_or(0.0)))
            .collect();
        let mut cmap = UnicodeCmap::new(Name(b"Custom"), identity());
        for &(gid, c) in &used.unicode {
            cmap.pair(gid, c);
        }
        let cmap = cmap.finish();
        let (type0, cid, descriptor, file, to_unicode) =
            (refs.type0, refs.cid, refs.descriptor, refs.file, refs.to_unicode);

        let mut c = self.chunk();
        c.type0_font(type0)
            .base_font(Name(name.as_bytes()))
            .encoding_predefined(Name(b"Identity-H"))
            .descendant_font(cid)
            .to_unicode(to_unicode);
        self.emit(type0, &c)?;

        let mut c = self.chunk();
        let mut cid_font = c.cid_font(cid);
        cid_font
            .subtype(CidFontType::Type2)
            .base_font(Name(name.as_bytes()))
            .system_info(identity())
            .font_descriptor(descriptor)
            .default_width(0.0)
            .cid_to_gid_map_predefined(Name(b"Identity"));
        cid_font.widths().consecutive(0, widths.iter().copied());
        cid_font.finish();
        self.emit(cid, &c)?;

        let mut c = self.chunk();
        let [x0, y0, x1, y1] = font.bbox.map(|v| font.to_pdf_units(v));
        c.font_descriptor(descriptor)
            .name(Name(name.as_bytes()))
            .flags(FontFlags::NON_SYMBOLIC)
            .bbox(Rect::new(x0, y0, x1, y1))
            .italic_angle(0.0)
            .ascent(font.to_pdf_units(font.ascent))
            .descent(font.to_pdf_units(font.descent))
            .cap_height(font.to_pdf_units(font.cap_height))
            .stem_v(if style == FontStyle::Bold { 120.0 } else { 80.0 })
            .font_file2(file);
        self.emit(descriptor, &c)?;

        let compressed = deflate(&subset)?;
        let mut c = self.chunk();
        c.stream(file, &compressed).filter(Filter::FlateDecode).pair(Name(b"Length1"), subset.len() as i32);
        self.emit(file, &c)?;

        let mut c = self.chunk();
        c.stream(to_unicode, &cmap);
        self.emit(to_unicode, &c)
    }
}

fn identity() -> SystemInfo<'static> {
    SystemInfo { registry: Str(b"Adobe"), ordering: Str(b"Identity"), supplement: 0 }
}

fn deflate(data: &[u8]) -> io::Result<Vec<u8>> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::with_capacity(data.len() / 3), flate2::Compression::fast());
    e.write_all(data)?;
    e.finish()
}

impl PdfBackend for PdfWriterBackend {
    fn begin_page(&mut self, width: f32, height: f32) -> Result<(), PdfError> {
        self.page_size = (width, height);
        self.graphics = Content::new();
        self.text = Content::new();
        self.text.begin_text();
        self.text.set_fill_gray(0.0);
        self.text_font = None;
        Ok(())
    }

    fn fill_rect(&mut self, x: f32, y: f32, width: f32, height: f32, gray: f32) {
        self.graphics.set_fill_gray(gray).rect(x, y, width, height).fill_nonzero();
    }

    fn line(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, width: f32, gray: f32) {
        self.graphics.set_stroke_gray(gray).set_line_width(width).move_to(x1, y1).line_to(x2, y2).stroke();
    }

    fn text(&mut self, x: f32, y: f32, style: FontStyle, size: f32, text: &str) {
        if text.is_empty() {
            return;
        }
        if self.text_font != Some((style, size)) {
            let name = match style {
                FontStyle::Regular => Name(b"F1"),
                FontStyle::Bold => Name(b"F2"),
            };
            self.text.set_font(name, size);
            self.text_font = Some((style, size));
        }
        let used = match style {
            FontStyle::Regular => &mut self.regular,
            FontStyle::Bold => &mut self.bold,
        };
        self.glyph_buf.clear();
        for c in text.chars() {
            self.glyph_buf.extend_from_slice(&used.id(c).to_be_bytes());
        }
        self.text.set_text_matrix([1.0, 0.0, 0.0, 1.0, x, y]);
        self.text.show(Str(&self.glyph_buf));
    }

    fn end_page(&mut self) -> Result<(), PdfError> {
        let mut text = std::mem::replace(&mut self.text, Content::new());
        text.end_text();
        let mut data = std::mem::replace(&mut self.graphics, Content::new()).finish().to_vec();
        data.push(b'\n');
        data.extend_from_slice(&text.finish());
        let compressed = deflate(&data)?;
        let content = self.alloc();
        let page = self.alloc();
        let mut c = self.chunk();
        c.stream(content, &compressed).filter(Filter::FlateDecode);
        self.emit(content, &c)?;

        let (w, h) = self.page_size;
        let mut c = self.chunk();
        let mut p = c.page(page);
        p.media_box(Rect::new(0.0, 0.0, w, h)).parent(self.pages).contents(content);
        p.resources().fonts().pair(Name(b"F1"), self.regular_refs.type0).pair(Name(b"F2"), self.bold_refs.type0);
        p.finish();
        self.emit(page, &c)?;
        self.page_refs.push(page);
        Ok(())
    }

    fn finish(mut self: Box<Self>, title: &str) -> Result<u64, PdfError> {
        self.write_font(FontStyle::Regular)?;
        self.write_font(FontStyle::Bold)?;

        let mut c = self.chunk();
        c.pages(self.pages).kids(self.page_refs.iter().copied()).count(self.page_refs.len() as i32);
        self.emit(self.pages, &c)?;

        let now = Utc::now();
        let date = pdf_writer::Date::new(now.year() as u16)
            .month(now.month() as u8)
            .day(now.day() as u8)
            .hour(now.hour() as u8)
            .minute(now.minute() as u8)
            .second(now.second() as u8)
            .utc_offset_hour(0)
            .utc_offset_minute(0);
        let mut c = self.chunk();
        c.indirect(self.info)
            .start::<DocumentInfo>()
            .title(TextStr(title))
            .producer(TextStr("reportd"))
            .creation_date(date);
        self.emit(self.info, &c)?;

        let mut c = self.chunk();
        c.indirect(self.catalog).start::<Catalog>().pages(self.pages);
        self.emit(self.catalog, &c)?;

        let xref = self.out.written;
        let n = self.offsets.len();
        write!(self.out, "xref\n0 {n}\n0000000000 65535 f\r\n")?;
        for off in &self.offsets[1..] {
            write!(self.out, "{off:010} 00000 n\r\n")?;
        }
        write!(
            self.out,
            "trailer\n<< /Size {n} /Root {} 0 R /Info {} 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            self.catalog.get(),
            self.info.get()
        )?;
        self.out.flush()?;
        Ok(self.out.written)
    }
}
