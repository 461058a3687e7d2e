//! One colour per method, the same in every chart of the page, and the outcome colours.

use padv_core::score::Method;
use plotters::style::RGBColor;

/// The colour of `method` (PA is always the strong red).
pub(crate) fn method(m: Method) -> RGBColor {
    match m {
        Method::Pa => RGBColor(214, 39, 40),
        Method::PolicyLogprob => RGBColor(31, 119, 180),
        Method::ReferenceLogprob => RGBColor(148, 103, 189),
        Method::SelfCertainty => RGBColor(44, 160, 44),
        Method::Deepconf => RGBColor(255, 127, 14),
        Method::DeepconfTail => RGBColor(140, 86, 75),
        Method::DeepconfBottom10 => RGBColor(227, 119, 194),
        Method::NegEntropy => RGBColor(23, 190, 207),
        Method::SelfCertaintyRefimpl => RGBColor(127, 127, 127),
        Method::DeepconfTailRefimpl => RGBColor(188, 189, 34),
        Method::DeepconfBottom10Refimpl => RGBColor(57, 59, 121),
        Method::Judge => RGBColor(90, 90, 90),
    }
}

/// `#rrggbb` of a colour, for the HTML legend swatches.
pub(crate) fn hex(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// Successful trajectories.
pub(crate) const SUCCESS: RGBColor = RGBColor(31, 119, 180);
/// Failed trajectories.
pub(crate) const FAILURE: RGBColor = RGBColor(230, 85, 13);
/// Chance levels and reference lines.
pub(crate) const CHANCE: RGBColor = RGBColor(120, 120, 120);
/// Ceilings (oracle).
pub(crate) const CEILING: RGBColor = RGBColor(20, 20, 20);
/// The annotated mistake step.
pub(crate) const ANNOTATED: RGBColor = RGBColor(0, 140, 70);
