//! The page: document head, navigation, the sections in order, inline CSS and JavaScript.

use maud::{html, Markup, PreEscaped, DOCTYPE};

use crate::plots::Plot;
use crate::{Ctx, ReportError};

/// The complete HTML document.
pub(crate) fn render(ctx: &Ctx<'_>) -> Result<String, ReportError> {
    let header = crate::header::section(ctx);
    let uq = crate::uq::section(ctx)?;
    let bon = crate::bon::section(ctx)?;
    let grid = crate::grid::section(ctx)?;
    // The traces are what grows with the input: when the page would pass the size limit,
    // draw fewer of them (the section says how many of how many) and try again.
    let mut max_traces = ctx.opts.max_traces;
    loop {
        let fa = crate::fa::section(ctx, max_traces)?;
        let html = document(ctx, &header, &uq, &bon, &fa, &grid);
        if html.len() <= ctx.opts.max_bytes || max_traces <= MIN_TRACES {
            if html.len() > ctx.opts.max_bytes {
                tracing::warn!(
                    "the report is {} bytes, over the {} asked for, with {max_traces} traces",
                    html.len(),
                    ctx.opts.max_bytes
                );
            }
            return Ok(html);
        }
        let shrink = ctx.opts.max_bytes as f64 / html.len() as f64 * 0.9;
        max_traces = ((max_traces as f64 * shrink) as usize).clamp(MIN_TRACES, max_traces - 1);
    }
}

/// Fewest traces the size limit may leave.
const MIN_TRACES: usize = 10;

fn document(
    ctx: &Ctx<'_>,
    header: &Markup,
    uq: &Markup,
    bon: &Markup,
    fa: &Markup,
    grid: &Markup,
) -> String {
    let title = crate::text::clean(&ctx.input.title);
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "padv report: " (title) }
                style { (PreEscaped(CSS)) }
            }
            body {
                nav {
                    strong { "padv report" }
                    a href="#inputs" { "inputs" }
                    a href="#uq" { "uncertainty" }
                    a href="#bon" { "best-of-N" }
                    a href="#fa" { "failure attribution" }
                    a href="#grid" { "aggregation grid" }
                }
                (header)
                main {
                    (uq)
                    (bon)
                    (fa)
                    (grid)
                }
                script { (PreEscaped(JS)) }
            }
        }
    };
    page.into_string()
}

/// A chart with its caption; `data-points` counts the data points it draws.
pub(crate) fn figure(plot: &Plot, caption: Markup) -> Markup {
    html! {
        figure.plot data-points=(plot.points) style=(format!("max-width:{}px", plot.width + 14)) {
            (PreEscaped(plot.svg.as_str()))
            figcaption { (caption) }
        }
    }
}

/// A highlighted remark ("nothing to evaluate", a sample, a missing evaluation).
pub(crate) fn note(text: &str) -> Markup {
    html! { p.note { (crate::text::clean(text)) } }
}

/// A legend in HTML (a swatch and the label of each labelled series): readable at any
/// zoom, and never on top of a curve. Dashed series (reference levels) get a dashed swatch.
pub(crate) fn legend(series: &[crate::plots::Series]) -> Markup {
    html! {
        ul.legend {
            @for s in series {
                @if let Some(label) = &s.label {
                    li {
                        span class=(if s.stroke == crate::plots::Stroke::Dashed { "swatch dashed" } else { "swatch" })
                            style=(format!("--c:{}", crate::colors::hex(s.color))) {}
                        (crate::text::clean(label))
                    }
                }
            }
        }
    }
}

/// A table cell naming a method, with its colour.
pub(crate) fn method_cell(m: padv_core::score::Method) -> Markup {
    html! {
        td { span.swatch style=(format!("--c:{}", crate::colors::hex(crate::colors::method(m)))) {} (m) }
    }
}

/// A table cell holding a count or an index (`–` when absent), sortable by its value.
pub(crate) fn int_cell(v: Option<usize>) -> Markup {
    html! { td.n data-v=[v.map(|x| x.to_string())] { (v.map_or("–".to_string(), |x| x.to_string())) } }
}

/// A table cell holding a number, right-aligned, sortable by its value.
pub(crate) fn num_cell(v: Option<f64>) -> Markup {
    let sort = v.filter(|x| x.is_finite()).map(|x| x.to_string());
    html! { td.n data-v=[sort] { (crate::text::num(v)) } }
}

const CSS: &str = r#"
:root{--fg:#1d1d1f;--muted:#5f6368;--line:#dadce0;--head:#f1f3f4}
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:var(--fg);background:#fafafa}
nav{position:sticky;top:0;z-index:2;background:#fff;border-bottom:1px solid var(--line);padding:6px 20px}
nav strong{margin-right:18px}
nav a{margin-right:14px;color:#1a5fb4;text-decoration:none}
header,main{max-width:1240px;margin:0 auto;padding:8px 20px}
header{background:#fff;border-bottom:1px solid var(--line)}
h1{font-size:22px;margin:6px 0}
h2{font-size:18px;margin:26px 0 8px;padding-bottom:3px;border-bottom:2px solid var(--line)}
h3{font-size:15px;margin:16px 0 6px}
a{color:#1a5fb4}
table{border-collapse:collapse;font-size:12.5px;margin:6px 0 12px;background:#fff}
th,td{border:1px solid var(--line);padding:3px 7px;text-align:left;vertical-align:top}
th{background:var(--head);font-weight:600}
td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.mono,span.mono{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px}
table.sortable th{cursor:pointer;user-select:none}
table.sortable th[data-dir=asc]::after{content:" \25B2"}
table.sortable th[data-dir=desc]::after{content:" \25BC"}
.scroll{max-height:420px;overflow:auto;display:inline-block;border:1px solid var(--line)}
.scroll table{margin:0}
figure{margin:6px 0;background:#fff;border:1px solid var(--line);padding:6px;break-inside:avoid}
figure svg{max-width:100%;height:auto;display:block}
figcaption{font-size:12.5px;color:var(--muted);margin-top:4px}
.pair{display:flex;flex-wrap:wrap;gap:12px;align-items:flex-start}
.pair>figure{flex:0 1 auto}
.pair>div{flex:1 1 320px}
.cols3{display:grid;grid-template-columns:repeat(auto-fill,minmax(370px,1fr));gap:8px}
.flow{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}
.flow>figure{flex:0 0 auto}
ul.legend{list-style:none;padding:0;margin:4px 0;font-size:13px}
ul.legend li{margin:2px 0}
.swatch{display:inline-block;width:14px;height:4px;margin-right:6px;vertical-align:middle;background:var(--c)}
.swatch.dashed{background:repeating-linear-gradient(90deg,var(--c) 0 4px,transparent 4px 7px)}
td .swatch{height:10px;width:10px}
.note{color:#7a4300;background:#fff7e6;border-left:3px solid #f0a020;padding:4px 8px;margin:6px 0}
.muted{color:var(--muted)}
.chance{margin:3px 0}
.trace{border-top:1px solid var(--line);margin-top:10px;padding-top:4px}
.trace h3{margin:4px 0}
details{margin:4px 0}
details summary{cursor:pointer;color:#1a5fb4}
.step{margin:4px 0;padding:3px 6px;background:#f6f6f6;border-left:3px solid var(--line)}
.step.mistake{border-left-color:#008c46}
.step.predicted{background:#fdecea}
.step pre{white-space:pre-wrap;word-break:break-word;margin:2px 0 0;font-size:12px}
.metric{border:1px solid var(--line);background:#fff;padding:3px 10px;margin-right:6px;cursor:pointer;border-radius:3px}
.metric.on{background:#1a5fb4;color:#fff;border-color:#1a5fb4}
@media print{
 nav,button.metric{display:none}
 body{background:#fff}
 .heat[hidden]{display:block!important}
 figure,table,.trace{break-inside:avoid}
 .scroll{max-height:none;overflow:visible}
}
"#;

const JS: &str = r#"
(function(){
function key(td){var v=td.getAttribute('data-v');return v===null?td.textContent.trim():v;}
document.querySelectorAll('table.sortable').forEach(function(t){
 t.querySelectorAll('thead th').forEach(function(th,i){
  th.addEventListener('click',function(){
   var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows),asc=th.getAttribute('data-dir')!=='asc';
   t.querySelectorAll('thead th').forEach(function(h){h.removeAttribute('data-dir');});
   th.setAttribute('data-dir',asc?'asc':'desc');
   rows.sort(function(a,b){
    var x=key(a.cells[i]),y=key(b.cells[i]),nx=parseFloat(x),ny=parseFloat(y);
    var c=(!isNaN(nx)&&!isNaN(ny))?nx-ny:(isNaN(nx)===isNaN(ny)?x.localeCompare(y):(isNaN(nx)?1:-1));
    return asc?c:-c;});
   rows.forEach(function(r){body.appendChild(r);});
  });
 });
});
var buttons=document.querySelectorAll('button.metric');
buttons.forEach(function(b){
 b.addEventListener('click',function(){
  buttons.forEach(function(x){x.classList.toggle('on',x===b);});
  document.querySelectorAll('.heat').forEach(function(h){h.hidden=h.getAttribute('data-metric')!==b.getAttribute('data-metric');});
 });
});
if(buttons.length){buttons[0].click();}
})();
"#;
