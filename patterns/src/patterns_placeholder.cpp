// Typed sockets: Pusher/Puller, Publisher/Subscriber, Client/Server (filled in by the patterns work).
