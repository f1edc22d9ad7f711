//! Who may enroll a device through a protocol (issue 19). [`challenges`]: one-time SCEP
//! challenge passwords, created and withdrawn by users, claimed by the SCEP handler.

pub mod challenges;

pub use challenges::{
    ChallengeGrant, ChallengeSecret, ChallengeView, Challenges, CreateChallenge, CreatedChallenge,
};
