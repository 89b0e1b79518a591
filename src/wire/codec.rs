//! The codec every generated service uses (`build.rs` names it): prost's, with buffers sized
//! to the message. tonic starts each call's encode and decode buffer at 8 KiB. Encoding a
//! 1 MiB chunk then grows it once, onto fresh pages. Decoding is worse: once it has read a
//! message's header, tonic reserves the message's length on top of what is already
//! buffered. With 1 MiB HTTP/2 frames that is most of the message, so the buffer is
//! reallocated and the chunk copied again. The messages that carry chunk or object bytes
//! get buffers that hold a chunk from the start: one chunk to encode into, and two to
//! decode into (what arrived with the header plus the reservation).

use std::any::TypeId;
use std::marker::PhantomData;

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

use super::pb;

/// Room to encode a 1 MiB chunk or object piece with its key and framing.
pub const BULK_ENCODE: usize = (1 << 20) + (16 << 10);
/// Room to decode one: a first frame of up to 1 MiB, then tonic's reservation of the
/// whole message on top of it.
pub const BULK_DECODE: usize = 2 * BULK_ENCODE;

/// tonic's defaults: an 8 KiB buffer, handed to HTTP/2 once 32 KiB are encoded.
const SMALL: (usize, usize) = (8 << 10, 32 << 10);

/// Whether messages of type `M` carry chunk or object bytes.
fn bulk<M: 'static>() -> bool {
    [
        TypeId::of::<pb::PutChunkRequest>(),
        TypeId::of::<pb::GetChunkReply>(),
        TypeId::of::<pb::PutObjectRequest>(),
        TypeId::of::<pb::GetObjectReply>(),
    ]
    .contains(&TypeId::of::<M>())
}

/// (buffer size, yield threshold) to encode (`decode` false) or decode messages of
/// type `M`.
fn sizes<M: 'static>(decode: bool) -> (usize, usize) {
    match (bulk::<M>(), decode) {
        (true, false) => (BULK_ENCODE, SMALL.1),
        (true, true) => (BULK_DECODE, SMALL.1),
        (false, _) => SMALL,
    }
}

fn settings<M: 'static>(decode: bool) -> BufferSettings {
    let (buffer, yield_at) = sizes::<M>(decode);
    BufferSettings::new(buffer, yield_at)
}

/// `tonic_prost::ProstCodec` with per-message buffer sizes.
#[derive(Debug, Clone)]
pub struct WireCodec<T, U>(PhantomData<(T, U)>);

impl<T, U> Default for WireCodec<T, U> {
    fn default() -> Self {
        WireCodec(PhantomData)
    }
}

impl<T, U> Codec for WireCodec<T, U>
where
    T: prost::Message + Send + 'static,
    U: prost::Message + Default + Send + 'static,
{
    type Encode = T;
    type Decode = U;
    type Encoder = WireEncoder<T>;
    type Decoder = WireDecoder<U>;

    fn encoder(&mut self) -> Self::Encoder {
        WireEncoder(ProstEncoder::new(settings::<T>(false)))
    }

    fn decoder(&mut self) -> Self::Decoder {
        WireDecoder(ProstDecoder::new(settings::<U>(true)))
    }
}

pub struct WireEncoder<T>(ProstEncoder<T>);

impl<T: prost::Message> Encoder for WireEncoder<T> {
    type Item = T;
    type Error = Status;

    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        self.0.encode(item, buf)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

pub struct WireDecoder<U>(ProstDecoder<U>);

impl<U: prost::Message + Default> Decoder for WireDecoder<U> {
    type Item = U;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, Status> {
        self.0.decode(buf)
    }

    fn buffer_settings(&self) -> BufferSettings {
        self.0.buffer_settings()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunk_messages_get_chunk_sized_buffers_and_the_rest_tonics_default() {
        let (enc, dec) = ((BULK_ENCODE, SMALL.1), (BULK_DECODE, SMALL.1));
        assert_eq!(sizes::<pb::PutChunkRequest>(false), enc);
        assert_eq!(sizes::<pb::PutChunkRequest>(true), dec);
        assert_eq!(sizes::<pb::GetChunkReply>(true), dec);
        assert_eq!(sizes::<pb::PutObjectRequest>(true), dec);
        assert_eq!(sizes::<pb::GetObjectReply>(false), enc);
        assert_eq!(sizes::<pb::GetChunkRequest>(false), SMALL);
        assert_eq!(sizes::<pb::PutChunkReply>(true), SMALL);
        // What tonic would use anyway for everything else (its fields are private; its
        // `Debug` shows them).
        assert_eq!(
            format!("{:?}", BufferSettings::new(SMALL.0, SMALL.1)),
            format!("{:?}", BufferSettings::default())
        );
    }

    /// The codec hands those sizes to tonic, per direction.
    #[test]
    fn the_codec_uses_them() {
        let show = |b: BufferSettings| format!("{b:?}");
        let mut c = WireCodec::<pb::PutChunkRequest, pb::GetChunkReply>::default();
        assert_eq!(
            show(c.encoder().buffer_settings()),
            show(settings::<pb::PutChunkRequest>(false))
        );
        assert_eq!(
            show(c.decoder().buffer_settings()),
            show(settings::<pb::GetChunkReply>(true))
        );
        assert_ne!(
            show(c.encoder().buffer_settings()),
            show(c.decoder().buffer_settings())
        );
    }
}
