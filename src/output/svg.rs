//! A small SVG builder for the HTML reports: line charts (plain and step lines, linear or log axes) and heat
//! maps, as strings. No I/O and no state beyond the string being built, so the same data gives the same
//! bytes. Coordinates are printed with at most two decimals to keep files small and stable.

use std::fmt::Write as _;

/// Colours of series, in order (colour-blind-safe Okabe-Ito palette, darkened for white backgrounds).
pub const PALETTE: [&str; 8] = [
    "#0072b2", "#d55e00", "#009e73", "#cc79a7", "#e69f00", "#56b4e9", "#7f7f7f", "#000000",
];

/// A number for SVG attributes: at most two decimals, no trailing zeros, never "NaN" or "-0".
pub fn num(v: f64) -> String {
    if !v.is_finite() {
        return "0".into();
    }
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Escapes text for HTML/SVG content and attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Text alignment of [`Svg::text`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Anchor {
    /// Left-aligned at x.
    Start,
    /// Centred on x.
    Middle,
    /// Right-aligned at x.
    End,
}

/// An SVG document being built, element by element.
#[derive(Debug, Clone)]
pub struct Svg {
    width: f64,
    height: f64,
    body: String,
}

impl Svg {
    /// An empty drawing of the given size in CSS pixels.
    pub fn new(width: f64, height: f64) -> Svg {
        Svg {
            width,
            height,
            body: String::new(),
        }
    }

    /// A filled rectangle, with an optional tooltip.
    pub fn rect(&mut self, x: f64, y: f64, w: f64, h: f64, fill: &str, title: Option<&str>) {
        let _ = write!(
            self.body,
            r#"<rect x="{}" y="{}" width="{}" height="{}" fill="{}""#,
            num(x),
            num(y),
            num(w.max(0.0)),
            num(h.max(0.0)),
            esc(fill)
        );
        match title {
            Some(t) => {
                let _ = write!(self.body, "><title>{}</title></rect>", esc(t));
            }
            None => self.body.push_str("/>"),
        }
    }

    /// An unfilled path (`d` in SVG path syntax); `dash` is a stroke-dasharray.
    pub fn path(&mut self, d: &str, stroke: &str, width: f64, dash: Option<&str>) {
        let _ = write!(
            self.body,
            r#"<path d="{}" fill="none" stroke="{}" stroke-width="{}""#,
            esc(d),
            esc(stroke),
            num(width)
        );
        if let Some(dash) = dash {
            let _ = write!(self.body, r#" stroke-dasharray="{}""#, esc(dash));
        }
        self.body.push_str("/>");
    }

    /// A filled, unstroked path of the given opacity.
    pub fn fill_path(&mut self, d: &str, fill: &str, opacity: f64) {
        let _ = write!(
            self.body,
            r#"<path d="{}" fill="{}" fill-opacity="{}" stroke="none"/>"#,
            esc(d),
            esc(fill),
            num(opacity)
        );
    }

    /// A straight line.
    pub fn line(&mut self, x1: f64, y1: f64, x2: f64, y2: f64, stroke: &str) {
        let _ = write!(
            self.body,
            r#"<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="{}"/>"#,
            num(x1),
            num(y1),
            num(x2),
            num(y2),
            esc(stroke)
        );
    }

    /// A text label; `class` picks its style from the page's CSS.
    pub fn text(&mut self, x: f64, y: f64, anchor: Anchor, class: &str, s: &str) {
        let anchor = match anchor {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        };
        let _ = write!(
            self.body,
            r#"<text x="{}" y="{}" text-anchor="{anchor}" class="{}">{}</text>"#,
            num(x),
            num(y),
            esc(class),
            esc(s)
        );
    }

    /// A text label turned to read bottom to top (a y axis title), centred on (x, y).
    pub fn vtext(&mut self, x: f64, y: f64, class: &str, s: &str) {
        let _ = write!(
            self.body,
            r#"<text x="{x}" y="{y}" text-anchor="middle" transform="rotate(-90 {x} {y})" class="{}">{}</text>"#,
            esc(class),
            esc(s),
            x = num(x),
            y = num(y),
        );
    }

    /// The finished `<svg>` element; `label` is its accessible name.
    pub fn finish(self, label: &str) -> String {
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{l}">{b}</svg>"#,
            w = num(self.width),
            h = num(self.height),
            l = esc(label),
            b = self.body
        )
    }
}

/// About `n` round tick values (1, 2 or 5 times a power of ten apart) covering `lo..=hi`.
pub fn nice_ticks(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    if !(lo.is_finite() && hi.is_finite()) || hi <= lo || n == 0 {
        return vec![if lo.is_finite() { lo } else { 0.0 }];
    }
    let raw = (hi - lo) / n as f64;
    let mag = 10f64.powf(raw.log10().floor());
    // The round step nearest the raw one (1, 2, 5 or 10 times the magnitude).
    let r = raw / mag;
    let step = mag
        * if r < 1.5 {
            1.0
        } else if r < 3.0 {
            2.0
        } else if r < 7.0 {
            5.0
        } else {
            10.0
        };
    let first = (lo / step).ceil() as i64;
    let last = (hi / step + 1e-9).floor() as i64;
    // Integer multiples of the step, so labels do not collect float noise.
    (first..=last).map(|k| k as f64 * step).collect()
}

/// A tick label with as many decimals as the tick spacing needs.
pub fn tick_label(v: f64, step: f64) -> String {
    let decimals = if step > 0.0 && step < 1.0 {
        ((-step.log10()).ceil() as usize).min(4)
    } else {
        0
    };
    let s = format!("{v:.decimals$}");
    // "-0", "0.00" and the like read as plain 0.
    if s.trim_start_matches('-')
        .trim_matches(|c| c == '0' || c == '.')
        .is_empty()
    {
        "0".into()
    } else {
        s
    }
}

/// One axis of a chart.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Lowest value shown.
    pub lo: f64,
    /// Highest value shown.
    pub hi: f64,
    /// Logarithmic (then `lo` must be > 0; smaller values are drawn at `lo`).
    pub log: bool,
    /// Axis title.
    pub label: String,
    /// Tick positions with their labels; empty means round numbers chosen here.
    pub ticks: Vec<(f64, String)>,
}

impl Axis {
    /// A linear axis with round-number ticks.
    pub fn linear(lo: f64, hi: f64, label: &str) -> Axis {
        let hi = if hi > lo { hi } else { lo + 1.0 };
        Axis {
            lo,
            hi,
            log: false,
            label: label.into(),
            ticks: Vec::new(),
        }
    }

    /// Position of `v` in 0..1 along the axis.
    fn frac(&self, v: f64) -> f64 {
        let f = if self.log {
            let lo = self.lo.max(f64::MIN_POSITIVE);
            let hi = self.hi.max(lo * 10.0);
            (v.max(lo).ln() - lo.ln()) / (hi.ln() - lo.ln())
        } else {
            (v - self.lo) / (self.hi - self.lo)
        };
        if f.is_finite() {
            f.clamp(0.0, 1.0)
        } else {
            0.0
        }
    }

    fn tick_list(&self, n: usize) -> Vec<(f64, String)> {
        if !self.ticks.is_empty() {
            return self.ticks.clone();
        }
        if self.log {
            let (a, b) = (
                self.lo.log10().ceil() as i32,
                self.hi.log10().floor() as i32,
            );
            return (a..=b)
                .map(|k| (10f64.powi(k), tick_label(10f64.powi(k), 10f64.powi(k))))
                .collect();
        }
        let t = nice_ticks(self.lo, self.hi, n);
        let step = if t.len() > 1 { t[1] - t[0] } else { 1.0 };
        t.into_iter().map(|v| (v, tick_label(v, step))).collect()
    }
}

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend entry.
    pub name: String,
    /// Stroke colour.
    pub color: String,
    /// Points in x order; a non-finite y breaks the line.
    pub points: Vec<(f64, f64)>,
    /// Draw as a step function (each value holds until the next x).
    pub step: bool,
    /// Dashed stroke.
    pub dashed: bool,
    /// A shaded band under the line: (x, low, high) in x order (a confidence interval); empty for none.
    pub band: Vec<(f64, f64, f64)>,
}

/// A line chart: axes, grid, legend and series.
#[derive(Debug, Clone)]
pub struct LineChart {
    /// Accessible name of the SVG.
    pub title: String,
    /// Horizontal axis.
    pub x: Axis,
    /// Vertical axis.
    pub y: Axis,
    /// Lines, drawn in order.
    pub series: Vec<Series>,
    /// Width in CSS pixels.
    pub width: f64,
    /// Height in CSS pixels.
    pub height: f64,
}

const LEFT: f64 = 64.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 26.0;
const BOTTOM: f64 = 46.0;

/// Draws the frame of a plot area: grid lines, tick labels and axis titles.
/// Without `y` (heat maps label their rows instead) there is no y grid.
fn frame(svg: &mut Svg, x: &Axis, y: Option<&Axis>, area: (f64, f64, f64, f64)) {
    let (left, top, w, h) = area;
    svg.rect(left, top, w, h, "#ffffff", None);
    for (v, label) in y.map(|y| y.tick_list(5)).unwrap_or_default() {
        let py = top + h - y.map_or(0.0, |y| y.frac(v)) * h;
        svg.line(left, py, left + w, py, "#e3e6ea");
        svg.text(left - 6.0, py + 4.0, Anchor::End, "tick", &label);
    }
    for (v, label) in x.tick_list(8) {
        let px = left + x.frac(v) * w;
        svg.line(px, top, px, top + h, "#eef0f2");
        svg.text(px, top + h + 16.0, Anchor::Middle, "tick", &label);
    }
    svg.line(left, top + h, left + w, top + h, "#6b7280");
    svg.line(left, top, left, top + h, "#6b7280");
    svg.text(
        left + w / 2.0,
        top + h + 36.0,
        Anchor::Middle,
        "axis",
        &x.label,
    );
    if let Some(y) = y {
        svg.vtext(14.0, top + h / 2.0, "axis", &y.label);
    }
}

/// The closed SVG path of a band (along the highs, back along the lows) in plot coordinates; empty when
/// it has fewer than two finite points.
fn band_path(band: &[(f64, f64, f64)], x: &Axis, y: &Axis, area: (f64, f64, f64, f64)) -> String {
    let (left, top, w, h) = area;
    let pts: Vec<(f64, f64, f64)> = band
        .iter()
        .copied()
        .filter(|&(a, b, c)| a.is_finite() && b.is_finite() && c.is_finite())
        .collect();
    if pts.len() < 2 {
        return String::new();
    }
    let px = |v: f64| left + x.frac(v) * w;
    let py = |v: f64| top + h - y.frac(v) * h;
    let mut d = String::new();
    for (i, &(vx, _, hi)) in pts.iter().enumerate() {
        let _ = write!(
            d,
            "{}{} {}",
            if i == 0 { "M" } else { "L" },
            num(px(vx)),
            num(py(hi))
        );
    }
    for &(vx, lo, _) in pts.iter().rev() {
        let _ = write!(d, "L{} {}", num(px(vx)), num(py(lo)));
    }
    d.push('Z');
    d
}

/// The SVG path of one series in plot coordinates.
fn series_path(s: &Series, x: &Axis, y: &Axis, area: (f64, f64, f64, f64)) -> String {
    let (left, top, w, h) = area;
    let px = |v: f64| left + x.frac(v) * w;
    let py = |v: f64| top + h - y.frac(v) * h;
    let mut d = String::new();
    let mut pen_down = false;
    let mut last_y = 0.0;
    for &(vx, vy) in &s.points {
        if !vy.is_finite() || !vx.is_finite() {
            pen_down = false;
            continue;
        }
        let (cx, cy) = (px(vx), py(vy));
        if !pen_down {
            let _ = write!(d, "M{} {}", num(cx), num(cy));
            pen_down = true;
        } else if s.step {
            // Hold the previous value up to this x, then jump.
            let _ = write!(d, "H{}", num(cx));
            if num(cy) != num(last_y) {
                let _ = write!(d, "V{}", num(cy));
            }
        } else {
            let _ = write!(d, "L{} {}", num(cx), num(cy));
        }
        last_y = cy;
    }
    d
}

impl LineChart {
    /// The chart as an `<svg>` element.
    pub fn render(&self) -> String {
        let mut svg = Svg::new(self.width, self.height);
        // Legend along the top right: swatch, then name. Text widths are estimated (about 7 px per
        // character at 12 px, on the generous side), so an error widens a gap instead of overlapping.
        // Entries wrap into rows that fit the plot's width; extra rows push the plot area down.
        let widths: Vec<f64> = self
            .series
            .iter()
            .map(|s| 24.0 + 7.0 * s.name.chars().count() as f64 + 16.0)
            .collect();
        let avail = self.width - LEFT - RIGHT + 16.0;
        let mut rows: Vec<Vec<usize>> = vec![Vec::new()];
        let mut row_w = 0.0;
        for (i, w) in widths.iter().enumerate() {
            if row_w + w > avail && rows.last().is_some_and(|r| !r.is_empty()) {
                rows.push(Vec::new());
                row_w = 0.0;
            }
            if let Some(r) = rows.last_mut() {
                r.push(i);
            }
            row_w += w;
        }
        let extra = 16.0 * (rows.len() - 1) as f64;
        let area = (
            LEFT,
            TOP + extra,
            self.width - LEFT - RIGHT,
            self.height - TOP - BOTTOM - extra,
        );
        frame(&mut svg, &self.x, Some(&self.y), area);
        for (r, row) in rows.iter().enumerate() {
            let y = TOP + 16.0 * r as f64;
            let row_w: f64 = row.iter().map(|&i| widths[i]).sum();
            let mut lx = (self.width - RIGHT - row_w + 16.0).max(LEFT);
            for &i in row {
                let s = &self.series[i];
                let dash = s.dashed.then_some("5 3");
                svg.path(
                    &format!("M{} {}h18", num(lx), num(y - 14.0)),
                    &s.color,
                    2.5,
                    dash,
                );
                svg.text(lx + 24.0, y - 10.0, Anchor::Start, "legend", &s.name);
                lx += widths[i];
            }
        }
        for s in &self.series {
            let d = band_path(&s.band, &self.x, &self.y, area);
            if !d.is_empty() {
                svg.fill_path(&d, &s.color, 0.18);
            }
        }
        let mut any = false;
        for s in &self.series {
            let d = series_path(s, &self.x, &self.y, area);
            if !d.is_empty() {
                any = true;
                svg.path(&d, &s.color, 1.8, s.dashed.then_some("6 3"));
            }
        }
        if !any {
            svg.text(
                LEFT + area.2 / 2.0,
                TOP + area.3 / 2.0,
                Anchor::Middle,
                "axis",
                "no data",
            );
        }
        svg.finish(&self.title)
    }
}

/// Colour of a busy fraction 0..1 on a white-to-dark-blue ramp (idle is near white, full is dark).
pub fn ramp(f: f64) -> String {
    const STOPS: [(f64, [f64; 3]); 5] = [
        (0.0, [247.0, 250.0, 252.0]),
        (0.25, [198.0, 219.0, 239.0]),
        (0.5, [107.0, 174.0, 214.0]),
        (0.75, [33.0, 113.0, 181.0]),
        (1.0, [8.0, 48.0, 107.0]),
    ];
    let f = if f.is_finite() {
        f.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let i = STOPS
        .windows(2)
        .position(|w| f <= w[1].0)
        .unwrap_or(STOPS.len() - 2);
    let ((a, ca), (b, cb)) = (STOPS[i], STOPS[i + 1]);
    let t = (f - a) / (b - a);
    let c: Vec<u8> = (0..3)
        .map(|k| (ca[k] + (cb[k] - ca[k]) * t).round() as u8)
        .collect();
    format!("#{:02x}{:02x}{:02x}", c[0], c[1], c[2])
}

/// Colour levels of a heat map: cells are quantised so runs of equal colour merge into one rectangle.
pub const HEAT_LEVELS: f64 = 20.0;

/// One row of a heat map.
#[derive(Debug, Clone)]
pub struct HeatRow {
    /// Row label (left of the row).
    pub label: String,
    /// Tooltip of the row label.
    pub title: String,
    /// One value in 0..1 per column.
    pub values: Vec<f64>,
    /// Draw a separator above this row (e.g. a new pool starts).
    pub rule_above: bool,
}

/// A heat map: rows of equal-width columns over a shared x axis.
#[derive(Debug, Clone)]
pub struct HeatMap {
    /// Accessible name of the SVG.
    pub title: String,
    /// Horizontal axis (the columns span `x.lo..x.hi`).
    pub x: Axis,
    /// Rows, top to bottom.
    pub rows: Vec<HeatRow>,
    /// Width in CSS pixels.
    pub width: f64,
}

impl HeatMap {
    /// The heat map as an `<svg>` element, with a colour scale below it.
    pub fn render(&self) -> String {
        let left = 170.0;
        let n = self.rows.len().max(1);
        let row_h = if n <= 24 {
            16.0
        } else {
            (440.0 / n as f64).max(6.0)
        };
        let (top, w, h) = (TOP, self.width - left - RIGHT, row_h * n as f64);
        let height = top + h + BOTTOM + 40.0;
        let mut svg = Svg::new(self.width, height);
        frame(&mut svg, &self.x, None, (left, top, w, h));
        svg.rect(left, top, w, h, &ramp(0.0), None);
        // Label every k-th row so labels never overlap.
        let every = (12.0 / row_h).ceil().max(1.0) as usize;
        for (r, row) in self.rows.iter().enumerate() {
            let ry = top + r as f64 * row_h;
            let cols = row.values.len().max(1);
            let cw = w / cols as f64;
            let mut c = 0;
            while c < row.values.len() {
                let level = (row.values[c].clamp(0.0, 1.0) * HEAT_LEVELS).round();
                let mut end = c + 1;
                while end < row.values.len()
                    && (row.values[end].clamp(0.0, 1.0) * HEAT_LEVELS).round() == level
                {
                    end += 1;
                }
                if level > 0.0 {
                    svg.rect(
                        left + c as f64 * cw,
                        ry,
                        (end - c) as f64 * cw,
                        row_h,
                        &ramp(level / HEAT_LEVELS),
                        None,
                    );
                }
                c = end;
            }
            if row.rule_above && r > 0 {
                svg.line(left - 4.0, ry, left + w, ry, "#374151");
            }
            if r % every == 0 {
                svg.text(
                    left - 6.0,
                    ry + row_h.min(12.0) - 2.0,
                    Anchor::End,
                    "tick",
                    &row.label,
                );
            }
            // An invisible strip per row carries the row's tooltip.
            svg.rect(0.0, ry, left, row_h, "transparent", Some(&row.title));
        }
        // Colour scale.
        let sy = top + h + 50.0;
        for k in 0..=10 {
            let f = k as f64 / 10.0;
            svg.rect(left + k as f64 * 24.0, sy, 24.0, 10.0, &ramp(f), None);
        }
        svg.text(left - 6.0, sy + 9.0, Anchor::End, "tick", "busy 0%");
        svg.text(
            left + 11.0 * 24.0 + 6.0,
            sy + 9.0,
            Anchor::Start,
            "tick",
            "100%",
        );
        svg.finish(&self.title)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_stable() {
        for (v, s) in [
            (1.0, "1"),
            (1.5, "1.5"),
            (1.234, "1.23"),
            (-0.001, "0"),
            (f64::NAN, "0"),
            (f64::INFINITY, "0"),
            (120.0, "120"),
        ] {
            assert_eq!(num(v), s, "num({v})");
        }
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn nice_ticks_are_round_and_cover_the_range() {
        assert_eq!(
            nice_ticks(0.0, 100.0, 5),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(nice_ticks(0.0, 1.0, 2), vec![0.0, 0.5, 1.0]);
        assert_eq!(nice_ticks(0.5, 7.0, 3), vec![2.0, 4.0, 6.0]);
        assert_eq!(nice_ticks(3.0, 3.0, 5), vec![3.0]);
        assert_eq!(tick_label(0.30000000000000004, 0.1), "0.3");
        assert_eq!(tick_label(200.0, 50.0), "200");
    }

    #[test]
    fn step_series_hold_values_until_the_next_point() {
        let x = Axis::linear(0.0, 10.0, "x");
        let y = Axis::linear(0.0, 10.0, "y");
        let s = Series {
            band: Vec::new(),
            name: "s".into(),
            color: "#000".into(),
            points: vec![(0.0, 0.0), (5.0, 10.0), (10.0, 10.0)],
            step: true,
            dashed: false,
        };
        // Plot area 100x100 at (0, 0): y grows downwards.
        assert_eq!(
            series_path(&s, &x, &y, (0.0, 0.0, 100.0, 100.0)),
            "M0 100H50V0H100"
        );
        let s = Series {
            band: Vec::new(),
            step: false,
            ..s
        };
        assert_eq!(
            series_path(&s, &x, &y, (0.0, 0.0, 100.0, 100.0)),
            "M0 100L50 0L100 0"
        );
    }

    #[test]
    fn gaps_break_lines_and_log_axes_place_decades_evenly() {
        let x = Axis {
            log: true,
            ..Axis::linear(1.0, 100.0, "x")
        };
        let y = Axis::linear(0.0, 1.0, "y");
        let s = Series {
            band: Vec::new(),
            name: "s".into(),
            color: "#000".into(),
            points: vec![(1.0, 0.0), (10.0, f64::NAN), (10.0, 0.5), (100.0, 1.0)],
            step: false,
            dashed: false,
        };
        assert_eq!(
            series_path(&s, &x, &y, (0.0, 0.0, 100.0, 100.0)),
            "M0 100M50 50L100 0"
        );
        assert_eq!(x.tick_list(5).len(), 3);
    }

    #[test]
    fn charts_render_every_series_and_say_when_empty() {
        let chart = LineChart {
            title: "t <1>".into(),
            x: Axis::linear(0.0, 10.0, "time"),
            y: Axis::linear(0.0, 100.0, "%"),
            series: vec![Series {
                band: Vec::new(),
                name: "a".into(),
                color: PALETTE[0].into(),
                points: vec![(0.0, 1.0), (10.0, 50.0)],
                step: true,
                dashed: false,
            }],
            width: 600.0,
            height: 300.0,
        };
        let svg = chart.render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains(r#"aria-label="t &lt;1&gt;""#));
        assert_eq!(
            svg.matches(&format!(r#"stroke="{}""#, PALETTE[0])).count(),
            2
        ); // legend + line
        assert!(!svg.contains("no data"));
        let empty = LineChart {
            series: vec![],
            ..chart
        };
        assert!(empty.render().contains("no data"));
    }

    #[test]
    fn ramp_runs_from_light_to_dark() {
        assert_eq!(ramp(0.0), "#f7fafc");
        assert_eq!(ramp(1.0), "#08306b");
        assert_eq!(ramp(2.0), ramp(1.0));
        assert_eq!(ramp(f64::NAN), ramp(0.0));
    }

    #[test]
    fn heat_maps_merge_equal_cells_and_skip_idle_ones() {
        let map = HeatMap {
            title: "h".into(),
            x: Axis::linear(0.0, 4.0, "t"),
            rows: vec![
                HeatRow {
                    label: "d0".into(),
                    title: "domain 0".into(),
                    values: vec![1.0, 1.0, 0.0, 0.5],
                    rule_above: false,
                },
                HeatRow {
                    label: "d1".into(),
                    title: "domain 1".into(),
                    values: vec![0.0; 4],
                    rule_above: true,
                },
            ],
            width: 500.0,
        };
        let svg = map.render();
        let cells = |c: &str| svg.matches(&format!(r#"fill="{c}"/>"#)).count();
        // One merged full cell, one half cell; idle cells are the background.
        assert_eq!(cells(&ramp(0.5)), 1 + 1); // the half cell + its colour-scale swatch
        assert_eq!(cells(&ramp(1.0)), 1 + 1);
        assert!(svg.contains("<title>domain 1</title>"));
    }
}
