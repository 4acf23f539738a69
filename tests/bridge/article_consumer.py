import pika

# 连接到 RabbitMQ 服务器
connection = pika.BlockingConnection(pika.ConnectionParameters('127.0.0.1', 5672))
channel = connection.channel()

# 声明一个队列
channel.queue_declare(queue='hello')

# 定义一个回调函数，用于处理消息
def callback(ch, method, properties, body):
    print(f" [x] Received '{body.decode()}'")

# 设置回调函数
channel.basic_consume(queue='hello',
                      auto_ack=True,
                      on_message_callback=callback)

# 开始消费消息
channel.start_consuming()

# 关闭连接
connection.close()
