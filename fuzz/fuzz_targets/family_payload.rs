//! Any bytes as the body of a callback on a family's own path: the first byte picks
//! the family, the rest is the body. `CallbackEvent::from_json_as` never panics, keeps
//! the path's family, and every payload accessor answers.

#![no_main]

use libfuzzer_sys::fuzz_target;
use suno_callback::{CallbackEvent, Family};
use suno_callback::event::Payload;

fuzz_target!(|data: &[u8]| {
    let [pick, body @ ..] = data else {
        return;
    };
    let family = Family::ALL[usize::from(*pick) % Family::ALL.len()];
    let Ok(event) = CallbackEvent::from_json_as(family, bytes::Bytes::copy_from_slice(body))
    else {
        return;
    };
    assert_eq!(event.family(), family);
    assert_eq!(&event.raw_body()[..], body);
    match event.payload() {
        Payload::Music(music) => {
            for track in music.tracks() {
                let _ = (track.audio_url(), track.title(), format!("{track:?}"));
            }
        }
        Payload::Lyrics(lyrics) => {
            let _ = lyrics.completed().count();
            for variation in lyrics.variations() {
                let _ = (variation.text(), variation.is_failed(), variation.error_message());
            }
        }
        Payload::Wav(wav) => {
            let _ = wav.audio_wav_url();
        }
        Payload::Separation(separation) => {
            let _ = (
                separation.vocal_url(),
                separation.instrumental_url(),
                separation.origin_url(),
                separation.info_key(),
                separation.stems().len(),
            );
        }
        Payload::Midi(midi) => {
            let _ = midi.state();
            for instrument in midi.instruments() {
                for note in instrument.notes() {
                    let _ = (note.pitch(), note.start(), note.end(), note.velocity());
                }
            }
        }
        Payload::Video(video) => {
            let _ = video.video_url();
        }
        Payload::Cover(cover) => {
            let _ = cover.images().len();
        }
        Payload::Voice(voice) => {
            let _ = (
                voice.status().is_final(),
                voice.validate_info(),
                voice.voice_id(),
                voice.error_code(),
                voice.error_message(),
            );
        }
        _ => {}
    }
});
