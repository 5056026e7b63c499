//! Small statistics for the timing tests (SPEC §2 issue rule 3: an
//! unknown user, a wrong password and a disabled user cost the same).

/// The median of `samples` (the upper one of an even count), sorting them
/// in place: the timing tests compare medians, which one slow outlier (a
/// scheduler hiccup on a busy CI machine) does not move.
pub fn median(samples: &mut [f64]) -> f64 {
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// The Mann–Whitney U test's z score (normal approximation, no tie
/// correction) of `a` against `b`: how far apart the two samples' ranks
/// are; |z| < 3.3 ≈ p > 0.001, no difference detectable.
pub fn mann_whitney_z(a: &[f64], b: &[f64]) -> f64 {
    let mut all: Vec<(f64, bool)> = a
        .iter()
        .map(|&x| (x, true))
        .chain(b.iter().map(|&x| (x, false)))
        .collect();
    all.sort_by(|x, y| x.0.total_cmp(&y.0));
    let rank_sum_a: f64 = all
        .iter()
        .enumerate()
        .filter(|(_, (_, in_a))| *in_a)
        .map(|(rank, _)| rank as f64 + 1.0)
        .sum();
    let (n1, n2) = (a.len() as f64, b.len() as f64);
    let u = rank_sum_a - n1 * (n1 + 1.0) / 2.0;
    let mean = n1 * n2 / 2.0;
    let sd = (n1 * n2 * (n1 + n2 + 1.0) / 12.0).sqrt();
    (u - mean) / sd
}
