//! Audio bytes, with no IO: the formats Gemini reads told apart by their signatures, their length
//! read from their headers or frames (or bounded from above where it cannot be read), and raw
//! PCM wrapped in a WAV header.

use std::time::Duration;

/// The audio formats Gemini reads, with the MIME types its docs name
/// (<https://ai.google.dev/gemini-api/docs/audio>, "Supported audio formats").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AudioFormat {
    /// RIFF/WAVE.
    Wav,
    /// MPEG audio (MP3), optionally behind an ID3v2 tag.
    Mp3,
    /// AIFF or AIFF-C (`FORM` ... `AIFF` / `AIFC`).
    Aiff,
    /// AAC in ADTS frames.
    Aac,
    /// Ogg (Vorbis, or Opus).
    Ogg,
    /// FLAC.
    Flac,
}

impl AudioFormat {
    /// The MIME type Gemini's docs list for it.
    pub(crate) fn mime(self) -> &'static str {
        match self {
            Self::Wav => "audio/wav",
            Self::Mp3 => "audio/mp3",
            Self::Aiff => "audio/aiff",
            Self::Aac => "audio/aac",
            Self::Ogg => "audio/ogg",
            Self::Flac => "audio/flac",
        }
    }
}

/// The size of an ID3v2 tag at the start of `data` (header and footer included), 0 without one.
fn id3_len(data: &[u8]) -> usize {
    if data.len() < 10 || &data[..3] != b"ID3" {
        return 0;
    }
    // A synchsafe 28-bit size, then a 10-byte footer when flag bit 4 is set (ID3v2.4 §3.1).
    let size = data[6..10]
        .iter()
        .fold(0usize, |acc, b| (acc << 7) | usize::from(b & 0x7f));
    let footer = if data[5] & 0x10 != 0 { 10 } else { 0 };
    10 + size + footer
}

fn is_adts(b: &[u8]) -> bool {
    b.len() >= 7 && b[0] == 0xff && b[1] & 0xf6 == 0xf0
}

fn is_mpeg_frame(b: &[u8]) -> bool {
    mpeg_frame(b).is_some()
}

/// The format of `data`, read from its signature, or `None` when it is none Gemini reads.
pub(crate) fn sniff(data: &[u8]) -> Option<AudioFormat> {
    if data.len() >= 12 && &data[..4] == b"RIFF" && &data[8..12] == b"WAVE" {
        return Some(AudioFormat::Wav);
    }
    if data.len() >= 12 && &data[..4] == b"FORM" && matches!(&data[8..12], b"AIFF" | b"AIFC") {
        return Some(AudioFormat::Aiff);
    }
    if data.starts_with(b"OggS") {
        return Some(AudioFormat::Ogg);
    }
    // An ID3v2 tag may stand before MP3, AAC or FLAC data.
    let rest = data.get(id3_len(data)..)?;
    if rest.starts_with(b"fLaC") {
        Some(AudioFormat::Flac)
    } else if is_adts(rest) {
        Some(AudioFormat::Aac)
    } else if is_mpeg_frame(rest) || (id3_len(data) > 0 && rest.is_empty()) {
        Some(AudioFormat::Mp3)
    } else {
        None
    }
}

/// What is known of an audio's length: read exactly from its headers or frames, or only bounded
/// from above.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Length {
    /// Read from the audio itself.
    Exact(Duration),
    /// Not readable: at most this long (its bytes at the smallest bitrate its format allows).
    AtMost(Duration),
}

impl Length {
    /// The length, or its upper bound: what may be billed.
    pub(crate) fn upper(self) -> Duration {
        match self {
            Self::Exact(d) | Self::AtMost(d) => d,
        }
    }
}

/// The longest audio Gemini takes in one prompt, 9.5 hours
/// (<https://ai.google.dev/gemini-api/docs/audio>, "Technical details about audio"): a longer one
/// is refused, so no call bills more.
pub(crate) const MAX_AUDIO: Duration = Duration::from_secs(9 * 3600 + 1800);

/// The length of `data` in `format`: exact where the headers or frames say it, else an upper
/// bound from the format's smallest bitrate, never more than [`MAX_AUDIO`] (Gemini refuses
/// longer audio, so a call never bills more).
pub(crate) fn length(format: AudioFormat, data: &[u8]) -> Length {
    let exact = match format {
        AudioFormat::Wav => wav_length(data),
        AudioFormat::Mp3 => mp3_length(data),
        AudioFormat::Aiff => aiff_length(data),
        AudioFormat::Aac => adts_length(data),
        AudioFormat::Ogg => ogg_length(data),
        AudioFormat::Flac => flac_length(data),
    };
    match exact {
        Some(d) => Length::Exact(d),
        None => Length::AtMost(upper_bound(format, data.len()).min(MAX_AUDIO)),
    }
}

/// The longest `len` bytes of `format` can play, from the smallest bitrate it has:
/// - MP3: 8 kbit/s, the lowest bitrate of MPEG-2.5 Layer III (ISO/IEC 13818-3 bitrate table).
/// - AAC (ADTS): every frame has a 7-byte header and carries at most 4 × 1024 samples, at
///   7350 Hz at the slowest (the lowest ADTS sampling-frequency index).
/// - Ogg and FLAC compress silence to almost nothing, so no bitrate bounds them: only the
///   9.5-hour limit does; nor does anything bound a WAV or AIFF whose header cannot be read
///   (the transcription refuses those).
fn upper_bound(format: AudioFormat, len: usize) -> Duration {
    let len = len as f64;
    let secs = match format {
        AudioFormat::Mp3 => len * 8.0 / 8000.0,
        AudioFormat::Aac => (len / 7.0) * 4096.0 / 7350.0,
        AudioFormat::Wav | AudioFormat::Aiff | AudioFormat::Ogg | AudioFormat::Flac => {
            return MAX_AUDIO;
        }
    };
    Duration::from_secs_f64(secs.ceil())
}

fn u16_le(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_le(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u32_be(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// `bytes` of audio at `byte_rate` bytes a second.
fn at_rate(bytes: u64, byte_rate: u64) -> Option<Duration> {
    (byte_rate > 0).then(|| Duration::from_secs_f64(bytes as f64 / byte_rate as f64))
}

/// A WAV's length: its `data` chunk (cut to the bytes present, as streamed WAVs write a size
/// they never reach) at the `fmt ` chunk's byte rate.
fn wav_length(data: &[u8]) -> Option<Duration> {
    let mut at = 12;
    let mut byte_rate = None;
    while at + 8 <= data.len() {
        let id = &data[at..at + 4];
        let size = u32_le(data, at + 4)? as usize;
        let body = at + 8;
        if id == b"fmt " {
            byte_rate = Some(u64::from(u32_le(data, body + 8)?));
        } else if id == b"data" {
            let present = size.min(data.len() - body) as u64;
            return at_rate(present, byte_rate?);
        }
        // Chunks are padded to an even size.
        at = body.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}

/// An AIFF's length: `numSampleFrames` over `sampleRate` (an 80-bit extended float) of its
/// `COMM` chunk.
fn aiff_length(data: &[u8]) -> Option<Duration> {
    let mut at = 12;
    while at + 8 <= data.len() {
        let size = u32_be(data, at + 4)? as usize;
        let body = at + 8;
        if &data[at..at + 4] == b"COMM" {
            let frames = u32_be(data, body + 2)?;
            let rate = extended_to_f64(data.get(body + 8..body + 18)?)?;
            return (rate > 0.0).then(|| Duration::from_secs_f64(f64::from(frames) / rate));
        }
        at = body.checked_add(size)?.checked_add(size & 1)?;
    }
    None
}

/// An IEEE 754 80-bit extended float (big-endian), as AIFF writes its sample rate.
fn extended_to_f64(b: &[u8]) -> Option<f64> {
    let exponent = i32::from(u16::from_be_bytes([b[0], b[1]]) & 0x7fff);
    let mantissa = u64::from_be_bytes(b[2..10].try_into().ok()?);
    if exponent == 0 && mantissa == 0 {
        return Some(0.0);
    }
    let value = mantissa as f64 * 2f64.powi(exponent - 16383 - 63);
    Some(if b[0] & 0x80 != 0 { -value } else { value })
}

/// A FLAC's length: total samples over the sample rate of its `STREAMINFO` block (`None` when
/// the encoder left the total unknown, 0).
fn flac_length(data: &[u8]) -> Option<Duration> {
    let start = id3_len(data) + 4;
    // METADATA_BLOCK_HEADER (4 bytes), then STREAMINFO: sample rate in 20 bits at bit 80,
    // total samples in 36 bits at bit 108.
    let info = data.get(start + 4..start + 4 + 18)?;
    if data[start] & 0x7f != 0 {
        return None;
    }
    let rate = (u32::from(info[10]) << 12) | (u32::from(info[11]) << 4) | u32::from(info[12] >> 4);
    let total = (u64::from(info[13] & 0x0f) << 32)
        | u64::from(u32::from_be_bytes(info[14..18].try_into().ok()?));
    (rate > 0 && total > 0).then(|| Duration::from_secs_f64(total as f64 / f64::from(rate)))
}

/// One MPEG audio frame header: `(frame length in bytes, samples, sample rate)`.
fn mpeg_frame(b: &[u8]) -> Option<(usize, u32, u32)> {
    if b.len() < 4 || b[0] != 0xff || b[1] & 0xe0 != 0xe0 {
        return None;
    }
    // Version: 0 = MPEG-2.5, 2 = MPEG-2, 3 = MPEG-1 (1 reserved); layer: 1 = III, 2 = II, 3 = I.
    let version = (b[1] >> 3) & 3;
    let layer = (b[1] >> 1) & 3;
    let bitrate_index = usize::from(b[2] >> 4);
    let rate_index = usize::from((b[2] >> 2) & 3);
    let padding = usize::from((b[2] >> 1) & 1);
    if version == 1 || layer == 0 || bitrate_index == 0 || bitrate_index == 15 || rate_index == 3 {
        return None;
    }
    // ISO/IEC 11172-3 and 13818-3 bitrate tables, kbit/s.
    const V1: [[u32; 15]; 3] = [
        [
            0, 32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448,
        ],
        [
            0, 32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384,
        ],
        [
            0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320,
        ],
    ];
    const V2: [[u32; 15]; 2] = [
        [
            0, 32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256,
        ],
        [0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160],
    ];
    let layer_no = 4 - layer; // 1, 2 or 3
    let kbps = if version == 3 {
        V1[usize::from(layer_no - 1)][bitrate_index]
    } else {
        V2[usize::from(layer_no != 1)][bitrate_index]
    };
    let rate = [44100, 48000, 32000][rate_index]
        >> match version {
            3 => 0,
            2 => 1,
            _ => 2,
        };
    let bits = kbps as usize * 1000;
    let rate_us = rate as usize;
    let (len, samples) = match (layer_no, version) {
        (1, _) => ((12 * bits / rate_us + padding) * 4, 384),
        (2, _) | (3, 3) => (144 * bits / rate_us + padding, 1152),
        _ => (72 * bits / rate_us + padding, 576),
    };
    (len >= 4).then_some((len, samples, rate))
}

/// An MP3's length, walking every frame to the end (an ID3v1 tag or trailing APE tag may
/// follow); `None` if the frames do not reach the end.
fn mp3_length(data: &[u8]) -> Option<Duration> {
    let mut at = id3_len(data);
    let mut secs = 0.0;
    let mut frames = 0;
    while at < data.len() {
        match mpeg_frame(&data[at..]) {
            // The last frame may be cut short.
            Some((len, samples, rate)) => {
                secs += f64::from(samples) / f64::from(rate);
                frames += 1;
                at += len;
            }
            None if data[at..].starts_with(b"TAG") || data[at..].starts_with(b"APETAGEX") => {
                break;
            }
            None => return None,
        }
    }
    (frames > 0).then(|| Duration::from_secs_f64(secs))
}

/// An AAC's length, walking every ADTS frame to the end.
fn adts_length(data: &[u8]) -> Option<Duration> {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    let mut at = id3_len(data);
    let mut secs = 0.0;
    let mut frames = 0;
    while at < data.len() {
        let b = &data[at..];
        if !is_adts(b) {
            return None;
        }
        let rate = *RATES.get(usize::from((b[2] >> 2) & 0x0f))?;
        let len = (usize::from(b[3] & 3) << 11) | (usize::from(b[4]) << 3) | usize::from(b[5] >> 5);
        let blocks = u32::from(b[6] & 3) + 1;
        if len < 7 {
            return None;
        }
        secs += f64::from(1024 * blocks) / f64::from(rate);
        frames += 1;
        at += len;
    }
    (frames > 0).then(|| Duration::from_secs_f64(secs))
}

/// An Ogg's length: the granule position of its last page, over the Vorbis sample rate (or
/// 48 kHz less the pre-skip, for Opus).
fn ogg_length(data: &[u8]) -> Option<Duration> {
    // The first page's first packet identifies the codec; the header is 27 bytes plus the
    // segment table.
    let segments = usize::from(*data.get(26)?);
    let packet = data.get(27 + segments..)?;
    let (rate, pre_skip) = if packet.starts_with(b"\x01vorbis") {
        (u32_le(packet, 12)?, 0)
    } else if packet.starts_with(b"OpusHead") {
        (48_000, u16_le(packet, 10)?)
    } else {
        return None;
    };
    let last = data.windows(4).rposition(|w| w == b"OggS")?;
    let granule = i64::from_le_bytes(data.get(last + 6..last + 14)?.try_into().ok()?);
    let samples = granule.checked_sub(i64::from(pre_skip))?;
    (rate > 0 && samples > 0).then(|| Duration::from_secs_f64(samples as f64 / f64::from(rate)))
}

/// The sample rate of Gemini's PCM answer: the `rate=` parameter of its MIME type
/// (`audio/L16;codec=pcm;rate=24000`), 24000 when it has none, as the docs describe the output
/// (<https://ai.google.dev/gemini-api/docs/speech-generation>: 24 kHz, 16-bit, mono).
pub(crate) fn pcm_rate(mime: &str) -> u32 {
    mime.split(';')
        .filter_map(|p| p.trim().strip_prefix("rate="))
        .find_map(|r| r.trim().parse().ok())
        .filter(|r| *r > 0)
        .unwrap_or(24_000)
}

/// 16-bit mono little-endian PCM at `rate` Hz in a 44-byte RIFF/WAVE header (a `fmt ` chunk of
/// 16 bytes, format 1, then the `data` chunk).
pub(crate) fn wav(pcm: &[u8], rate: u32) -> Vec<u8> {
    const CHANNELS: u16 = 1;
    const BITS: u16 = 16;
    let block_align = CHANNELS * BITS / 8;
    let data_len = u32::try_from(pcm.len()).unwrap_or(u32::MAX - 36);
    let mut out = Vec::with_capacity(44 + pcm.len());
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&(36 + data_len).to_le_bytes());
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&16u32.to_le_bytes());
    out.extend_from_slice(&1u16.to_le_bytes());
    out.extend_from_slice(&CHANNELS.to_le_bytes());
    out.extend_from_slice(&rate.to_le_bytes());
    out.extend_from_slice(&(rate * u32::from(block_align)).to_le_bytes());
    out.extend_from_slice(&block_align.to_le_bytes());
    out.extend_from_slice(&BITS.to_le_bytes());
    out.extend_from_slice(b"data");
    out.extend_from_slice(&data_len.to_le_bytes());
    out.extend_from_slice(pcm);
    out
}

/// Whole seconds (rounded up) of `d`, at least 1 for any audio at all.
pub(crate) fn billed_seconds(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(l: Length) -> f64 {
        l.upper().as_secs_f64()
    }

    #[test]
    fn wav_header_is_byte_exact() {
        let pcm = [1u8, 0, 255, 127];
        let out = wav(&pcm, 24_000);
        let expected: Vec<u8> = [
            &b"RIFF"[..],
            &40u32.to_le_bytes(),
            b"WAVE",
            b"fmt ",
            &16u32.to_le_bytes(),
            &1u16.to_le_bytes(),
            &1u16.to_le_bytes(),
            &24_000u32.to_le_bytes(),
            &48_000u32.to_le_bytes(),
            &2u16.to_le_bytes(),
            &16u16.to_le_bytes(),
            b"data",
            &4u32.to_le_bytes(),
            &pcm,
        ]
        .concat();
        assert_eq!(out, expected);
        assert_eq!(out.len(), 44 + 4);
        assert_eq!(sniff(&out), Some(AudioFormat::Wav));
        // One second of 24 kHz 16-bit mono reads back as one second.
        let second = wav(&vec![0; 48_000], 24_000);
        assert_eq!(
            length(AudioFormat::Wav, &second),
            Length::Exact(Duration::from_secs(1))
        );
    }

    #[test]
    fn pcm_rate_is_read_from_the_mime_type() {
        assert_eq!(pcm_rate("audio/L16;codec=pcm;rate=24000"), 24_000);
        assert_eq!(pcm_rate("audio/L16; rate=16000"), 16_000);
        assert_eq!(pcm_rate("audio/L16"), 24_000);
        assert_eq!(pcm_rate("audio/L16;rate=0"), 24_000);
    }

    /// One MPEG-1 Layer III frame at 128 kbit/s, 44.1 kHz, no padding: 417 bytes, 1152 samples.
    fn mp3_frame() -> Vec<u8> {
        let mut f = vec![0xff, 0xfb, 0x90, 0x64];
        f.resize(417, 0);
        f
    }

    #[test]
    fn formats_are_sniffed_by_signature() {
        let riff = [&b"RIFF\0\0\0\0WAVE"[..], &[0; 8]].concat();
        assert_eq!(sniff(&riff), Some(AudioFormat::Wav));
        assert_eq!(sniff(b"FORM\0\0\0\0AIFFCOMM"), Some(AudioFormat::Aiff));
        assert_eq!(sniff(b"FORM\0\0\0\0AIFCCOMM"), Some(AudioFormat::Aiff));
        assert_eq!(sniff(b"OggS\0\x02"), Some(AudioFormat::Ogg));
        assert_eq!(sniff(b"fLaC\0\0\0\x22"), Some(AudioFormat::Flac));
        assert_eq!(sniff(&mp3_frame()), Some(AudioFormat::Mp3));
        let id3 = [&b"ID3\x04\0\0\0\0\0\x02ab"[..], &mp3_frame()].concat();
        assert_eq!(sniff(&id3), Some(AudioFormat::Mp3));
        assert_eq!(
            sniff(&[0xff, 0xf1, 0x50, 0x80, 0x02, 0x1f, 0xfc]),
            Some(AudioFormat::Aac)
        );
        // Not audio: text, a PNG, a RIFF that is not WAVE (AVI), nothing.
        assert_eq!(sniff(b"hello, this is text"), None);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), None);
        assert_eq!(sniff(b"RIFF\0\0\0\0AVI LIST"), None);
        assert_eq!(sniff(b""), None);
        // A frame sync with a reserved version or bitrate is not MP3.
        assert_eq!(sniff(&[0xff, 0xeb, 0x90, 0x64]), None);
        assert_eq!(sniff(&[0xff, 0xfb, 0xf0, 0x64]), None);
    }

    #[test]
    fn mp3_length_walks_the_frames() {
        let frames: Vec<u8> = (0..38).flat_map(|_| mp3_frame()).collect();
        let with_tag = [&frames[..], b"TAG", &[0; 125]].concat();
        let l = length(AudioFormat::Mp3, &with_tag);
        assert!(matches!(l, Length::Exact(_)));
        assert!((secs(l) - 38.0 * 1152.0 / 44100.0).abs() < 1e-9, "{l:?}");
        // Garbage after the frames: only the bound at 8 kbit/s (1000 bytes a second) is known.
        let broken = [&frames[..], b"garbage that is not a frame"].concat();
        let l = length(AudioFormat::Mp3, &broken);
        assert_eq!(
            l,
            Length::AtMost(Duration::from_secs((broken.len() as u64).div_ceil(1000)))
        );
        assert!(l.upper().as_secs_f64() > 38.0 * 1152.0 / 44100.0);
    }

    #[test]
    fn aac_length_walks_the_adts_frames() {
        // 44.1 kHz (index 4), frames of 10 bytes, one block each.
        let header = [0xff, 0xf1, 0x50, 0x80, 0x01, 0x5f, 0xfc];
        let frame = [&header[..], &[0; 3]].concat();
        let data: Vec<u8> = (0..431).flat_map(|_| frame.clone()).collect();
        let l = length(AudioFormat::Aac, &data);
        assert!(matches!(l, Length::Exact(_)));
        assert!((secs(l) - 431.0 * 1024.0 / 44100.0).abs() < 1e-9);
    }

    #[test]
    fn aiff_flac_and_ogg_lengths_come_from_their_headers() {
        // AIFF: 44100 frames at 44100 Hz (0x400E AC44 0000 0000 0000).
        let mut comm = b"COMM\0\0\0\x12\0\x01".to_vec();
        comm.extend_from_slice(&44_100u32.to_be_bytes());
        comm.extend_from_slice(&16u16.to_be_bytes());
        comm.extend_from_slice(&[0x40, 0x0e, 0xac, 0x44, 0, 0, 0, 0, 0, 0]);
        let aiff = [&b"FORM\0\0\0\x2eAIFF"[..], &comm].concat();
        assert_eq!(
            length(AudioFormat::Aiff, &aiff),
            Length::Exact(Duration::from_secs(1))
        );

        // FLAC: STREAMINFO with 16 kHz and 32000 samples.
        let mut info = vec![0u8; 18];
        let rate: u32 = 16_000;
        info[10] = (rate >> 12) as u8;
        info[11] = (rate >> 4) as u8;
        info[12] = ((rate & 0x0f) << 4) as u8;
        info[14..18].copy_from_slice(&32_000u32.to_be_bytes());
        let flac = [&b"fLaC\x80\0\0\x22"[..], &info].concat();
        assert_eq!(
            length(AudioFormat::Flac, &flac),
            Length::Exact(Duration::from_secs(2))
        );
        // Unknown total: only the 9.5-hour limit bounds it.
        let mut unknown = flac.clone();
        unknown[8 + 14..8 + 18].fill(0);
        assert_eq!(
            length(AudioFormat::Flac, &unknown),
            Length::AtMost(MAX_AUDIO)
        );

        // Ogg Vorbis at 8000 Hz, last granule 24000: 3 seconds.
        let mut first = b"OggS\0\x02".to_vec();
        first.resize(26, 0);
        first.push(1); // one segment
        first.push(30);
        first.extend_from_slice(b"\x01vorbis\0\0\0\0\x01");
        first.extend_from_slice(&8000u32.to_le_bytes());
        let mut last = b"OggS\0\x04".to_vec();
        last.extend_from_slice(&24_000i64.to_le_bytes());
        last.resize(27, 0);
        let ogg = [first, last].concat();
        assert_eq!(
            length(AudioFormat::Ogg, &ogg),
            Length::Exact(Duration::from_secs(3))
        );
    }

    #[test]
    fn unreadable_lengths_are_bounded_from_above() {
        let wav = b"RIFF\0\0\0\0WAVEjunk";
        assert_eq!(length(AudioFormat::Wav, wav), Length::AtMost(MAX_AUDIO));
        let huge = vec![0u8; 64 * 1024 * 1024];
        assert_eq!(length(AudioFormat::Mp3, &huge).upper(), MAX_AUDIO);
        assert_eq!(billed_seconds(Duration::from_millis(1)), 1);
        assert_eq!(billed_seconds(Duration::from_millis(2001)), 3);
        assert_eq!(billed_seconds(Duration::ZERO), 1);
    }
}
