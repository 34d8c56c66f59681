//! Platform pieces that know nothing of the portal's features: what the operating system can
//! tell about where files live. Features use them; they use no feature.

pub mod fs;
