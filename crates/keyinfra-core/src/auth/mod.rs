//! Authentication: passwords, access tokens, login throttling.

pub mod password;
pub mod throttle;
pub mod token;

pub use password::{Password, PasswordError, PasswordHasher, Pepper, Verification};
pub use throttle::LoginThrottle;
pub use token::{AccessToken, Claims, JwtSecret, TokenError, TokenService};
