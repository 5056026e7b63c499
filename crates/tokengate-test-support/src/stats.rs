//! Small statistics for the timing tests (SPEC §2 issue rule 3: an
//! unknown user, a wrong password and a disabled user cost the same).

/// The median of `samples` (the upper one of an even count), sorting them
/// in place: the timing tests compare medians, which one slow outlier (a
/// scheduler hiccup on a busy CI machine) does not move.
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}
