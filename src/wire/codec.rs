//! The codec every generated service uses (`build.rs` names it): prost's, with buffers sized
//! to the message. tonic starts each call's encode and decode buffer at 8 KiB and grows it
//! as bytes arrive; a 1 MiB chunk then costs a chain of reallocations, the last of which
//! copies the whole chunk again, and fresh pages that fault in one by one. The messages
//! that carry chunk or object bytes get a buffer that holds a chunk at once.

use std::any::TypeId;
use std::marker::PhantomData;

use tonic::Status;
use tonic::codec::{BufferSettings, Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic_prost::{ProstDecoder, ProstEncoder};

use super::pb;

/// Room for a 1 MiB chunk or object piece, its key and framing.
pub const BULK_BUFFER: usize = (1 << 20) + (16 << 10);

/// tonic's defaults: an 8 KiB buffer, handed to HTTP/2 once 32 KiB are encoded.
const SMALL: (usize, usize) = (8 << 10, 32 << 10);

/// Buffer settings for message type `M`.
fn settings<M: 'static>() -> BufferSettings {
    let t = TypeId::of::<M>();
    let bulk = [
        TypeId::of::<pb::PutChunkRequest>(),
        TypeId::of::<pb::GetChunkReply>(),
        TypeId::of::<pb::PutObjectRequest>(),
        TypeId::of::<pb::GetObjectReply>(),
    ];
    if bulk.contains(&t) {
        BufferSettings::new(BULK_BUFFER, SMALL.1)
    } else {
        BufferSettings::new(SMALL.0, SMALL.1)
    }
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
        WireEncoder(ProstEncoder::new(settings::<T>()))
    }

    fn decoder(&mut self) -> Self::Decoder {
        WireDecoder(ProstDecoder::new(settings::<U>()))
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

    /// `BufferSettings` keeps its fields private; its `Debug` shows them.
    fn size(b: BufferSettings) -> String {
        format!("{b:?}")
    }

    #[test]
    fn chunk_messages_get_a_chunk_sized_buffer_and_the_rest_tonics_default() {
        let bulk = size(BufferSettings::new(BULK_BUFFER, SMALL.1));
        let small = size(BufferSettings::new(SMALL.0, SMALL.1));
        assert_eq!(small, size(BufferSettings::default()));
        let mut c = WireCodec::<pb::PutChunkRequest, pb::GetChunkReply>::default();
        assert_eq!(size(c.encoder().buffer_settings()), bulk);
        assert_eq!(size(c.decoder().buffer_settings()), bulk);
        let mut c = WireCodec::<pb::GetChunkRequest, pb::PutChunkReply>::default();
        assert_eq!(size(c.encoder().buffer_settings()), small);
        assert_eq!(size(c.decoder().buffer_settings()), small);
    }
}
