// Stub for msgpackr's optional native accelerator: no extractor, msgpackr stays pure JavaScript.
module.exports = null;
