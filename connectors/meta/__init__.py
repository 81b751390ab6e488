"""Meta's platforms, all on the Graph API with one webhook handshake and signature: WhatsApp
Business (Cloud API), Messenger and Instagram messaging."""
