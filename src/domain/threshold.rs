//! Threshold values: finite percentages in 0–100.

use super::ParseError;

#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Threshold(f64);

impl Threshold {
    pub fn parse(v: f64) -> Result<Self, ParseError> {
        if v.is_finite() && (0.0..=100.0).contains(&v) {
            Ok(Self(v))
        } else {
            Err(ParseError::new(
                "threshold must be a number between 0 and 100",
            ))
        }
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range() {
        assert!(Threshold::parse(0.0).is_ok());
        assert!(Threshold::parse(100.0).is_ok());
        assert!(Threshold::parse(55.5).is_ok());
        for bad in [-0.1, 100.01, f64::NAN, f64::INFINITY] {
            assert!(Threshold::parse(bad).is_err());
        }
    }
}
