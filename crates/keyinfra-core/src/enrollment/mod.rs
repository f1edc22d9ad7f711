//! Who may enroll a device through a protocol (issue 19). [`challenges`]: one-time
//! challenge passwords, created and withdrawn by users, claimed by the SCEP handler.
//! [`requests`]: enrollments whose challenge asks for an ADMIN's approval, held until
//! one decides. [`claim_batch`]: concurrent claims gathered into one statement. `live`:
//! the challenges this replica made, claimed with no statement at all.

pub mod challenges;
mod claim_batch;
pub(crate) mod live;
pub mod requests;

pub use challenges::{
    ChallengeGrant, ChallengeSecret, ChallengeView, Challenges, CreateChallenge, CreatedChallenge,
};
pub use requests::{
    EnrollmentRequestView, EnrollmentRequests, HeldEnrollment, PollAnswer, RequestState,
};
